"""test_clients.py: the HTTP clients people actually use, end to end against the device.

Each client is driven as an application would drive it, and the tests assert what the application
saw (status, body, error) and what reached storage:

  curl            Debian's curl 7.88, run directly (-w '%{json}', -D, -v)
  go              clients/goclient.go: net/http with Transport.ExpectContinueTimeout (built once per run)
  node-http       clients/nodeclient.js with the http/https module and a keep-alive Agent
  node-fetch      clients/nodeclient.js with Node's global fetch (undici)
  aiohttp         clients/aiohttp_client.py: aiohttp 3.8 (expect100=True), under /usr/bin/python3
  chromium-fetch  clients/browser.html in headless Chromium, fetch(); driven through the DevTools
  chromium-xhr    protocol over a pipe (clients/chromium_cdp.py); the same page with XMLHttpRequest

Where the client's own report is not enough (did the body cross? on how many connections?) a
counting TCP proxy sits between client and device: it forwards bytes both ways unchanged (TLS
included) and counts what the client sent on each connection.
"""
import base64
import functools
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from conftest import CA_CERT, CERTS, DEFAULT_TARGETS, ROOT, Endpoint
from httpwire import request

TARGETS = DEFAULT_TARGETS + ("host-rtos",)  # and in RTOS mode (NO_SYS=0)

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS_DIR = os.path.join(HERE, "clients")
BUILD = os.path.join(ROOT, "build", "test")
PYTHON = "/usr/bin/python3"  # Debian's, with python3-aiohttp

TOKEN = "T"
AUTH = "Bearer " + TOKEN
SETTINGS = {"token": TOKEN, "capacity": "3M"}  # 3M: the most the mps2-an385 flash model holds
BASIC_USERS = os.path.join(ROOT, "scripts", "examples", "basic_users.lua")
USERS = {"users": "alice:secret1:rw,bob:secret2:r", "capacity": "3M"}
ALICE = "Basic " + base64.b64encode(b"alice:secret1").decode()
MIB = 1024 * 1024
RUNS = 5  # scenario 4: the failure it guards against is intermittent

HOST_ONLY = pytest.mark.targets("host", "host-https", why="on the boards (QEMU, slower, one TLS session) a "
                                "representative subset runs: scenario 4 with Go and Node fetch, scenario 3 "
                                "with curl and Go, scenarios 1 and 2 (and so 7 on mps2-https) with aiohttp")

NO_EXPECT = {
    "node-fetch": "Node's fetch (undici) rejects the request: 'expect header not supported' (UND_ERR_NOT_SUPPORTED)",
    "chromium-fetch": "browsers never send Expect: 100-continue (a forbidden request header for fetch and XHR)",
    "chromium-xhr": "browsers never send Expect: 100-continue (a forbidden request header for fetch and XHR)",
}
NO_CHUNKED = {
    "chromium-fetch": "Chromium streams a request body (chunked) only over HTTP/2 or QUIC; over HTTP/1.1 "
                      "fetch() rejects with 'Failed to fetch'",
    "chromium-xhr": "XMLHttpRequest cannot stream a request body",
}
ALL_CLIENTS = ["curl", "go", "node-http", "node-fetch", "aiohttp", "chromium-fetch", "chromium-xhr"]


def clients(names, unable=None):
    """Parameters for these clients; those in `unable` are skipped with its reason."""
    unable = unable or {}
    return [pytest.param(n, marks=pytest.mark.skip(reason=unable[n])) if n in unable else n for n in names]


# ---- Bodies -------------------------------------------------------------------------------------

def xorshift_body(size, seed):
    """The bytes browser.html's makeBody(size, seed) sends: xorshift32 words, little-endian."""
    return _xorshift(size, seed)


@functools.lru_cache(maxsize=8)
def _xorshift(size, seed):
    words = []
    x = seed & 0xFFFFFFFF or 1
    for _ in range((size + 3) // 4):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        words.append(x)
    return struct.pack("<%dI" % len(words), *words)[:size]


class Body:
    """An upload body: its bytes, a file holding them (for the programs), and the seed browsers use."""

    def __init__(self, tmp_path, size, seed=7):
        self.size, self.seed = size, seed
        self.data = xorshift_body(size, seed)
        self.path = str(tmp_path / ("body-%d.bin" % size))
        with open(self.path, "wb") as f:
            f.write(self.data)
        self.sha256 = hashlib.sha256(self.data).hexdigest()


# ---- The counting proxy -------------------------------------------------------------------------

class CountingProxy:
    """A loopback TCP proxy to the device's port that counts, per connection, the bytes the client sent.

    Half-closes are passed on (a FIN from either side becomes a shutdown of the other), so a lingering
    close looks to the client as it would without the proxy; a reset on one side resets the other."""

    def __init__(self, endpoint):
        self.target = endpoint.port
        self.tls = endpoint.tls
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.conns = []  # one dict per accepted connection: up (client to device), down
        self.lock = threading.Lock()
        self.threads = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def web(self):
        return Endpoint(self.port, self.tls)

    def _accept(self):
        while True:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            rec = {"up": 0, "down": 0, "open": 2}
            with self.lock:
                self.conns.append(rec)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for src, dst, key in ((client, upstream, "up"), (upstream, client, "down")):
                t = threading.Thread(target=self._pump, args=(src, dst, key, rec, (client, upstream)), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src, dst, key, rec, pair):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    break
                with self.lock:
                    rec[key] += len(data)
                dst.sendall(data)
        except OSError:
            for s in pair:  # a reset on one side: reset the other too
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        with self.lock:
            rec["open"] -= 1
            last = rec["open"] == 0
        if last:
            for s in pair:
                s.close()

    def wait_idle(self, timeout=10):
        """Waits until every proxied connection has ended both ways (or the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(c["open"] == 0 for c in self.conns):
                    return
            time.sleep(0.05)

    def snapshot(self):
        with self.lock:
            return [dict(c) for c in self.conns]

    def close(self):
        self.lsock.close()


@pytest.fixture
def proxy_for():
    proxies = []

    def make(dut):
        p = CountingProxy(dut.web)
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.close()


# ---- Running the clients ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def go_client():
    """clients/goclient.go built once per run into build/test/clients (stdlib only, no network)."""
    if shutil.which("go") is None:
        pytest.skip("go (golang-go) is not installed")
    out = os.path.join(BUILD, "clients", "goclient")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    env = dict(os.environ, GO111MODULE="off", GOFLAGS="", CGO_ENABLED="0", GOPROXY="off",
               GOCACHE=os.path.join(BUILD, "go", "cache"), GOPATH=os.path.join(BUILD, "go", "path"))
    r = subprocess.run(["go", "build", "-o", out, os.path.join(CLIENTS_DIR, "goclient.go")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "goclient did not build:\n" + r.stdout + r.stderr
    return out


def _server_spki():
    """Base64 SHA-256 of the server certificate's public key: what Chromium is told to trust."""
    pub = subprocess.run(["openssl", "x509", "-in", os.path.join(CERTS, "server.crt"), "-pubkey", "-noout"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """One headless Chromium for the run, with browser.html loaded (started on first use)."""
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed")
    sys.path.insert(0, CLIENTS_DIR)
    from chromium_cdp import Chromium
    b = Chromium(str(tmp_path_factory.mktemp("chromium")), spki=_server_spki())
    yield b
    b.close()


class Runner:
    """Runs one client against a URL and returns what the application saw, as the client programs print it:
    {"status", "body", "error", "steps": [{"status", "body", "connection", "reused", "got_100", ...}]}."""

    def __init__(self, request, tmp_path):
        self.request = request
        self.tmp = tmp_path
        self.n = 0

    def __call__(self, client, scenario, endpoint, path, auth, body=None, timeout=180):
        url = endpoint.url(path)
        if client == "curl":
            return self._curl(scenario, endpoint, url, auth, body, timeout)
        if client.startswith("chromium-"):
            b = self.request.getfixturevalue("browser")
            params = {"api": client.split("-", 1)[1], "scenario": scenario, "url": url, "auth": auth or "",
                      "size": body.size if body else 0, "seed": body.seed if body else 1}
            res = b.run(params, timeout=timeout)
            if body is not None and res.get("sent_sha256"):
                assert res["sent_sha256"] == body.sha256, "the page made other bytes than xorshift_body()"
            return res
        env = dict(os.environ)
        if endpoint.tls:
            env["POSTERN_CA"] = CA_CERT
            env["NODE_EXTRA_CA_CERTS"] = CA_CERT
        tail = [scenario, url, auth or ""] + ([body.path] if body else [])
        if client == "go":
            cmd = [self.request.getfixturevalue("go_client")] + tail
        elif client in ("node-http", "node-fetch"):
            cmd = ["node", os.path.join(CLIENTS_DIR, "nodeclient.js"), client.split("-")[1]] + tail
        elif client == "aiohttp":
            cmd = [PYTHON, os.path.join(CLIENTS_DIR, "aiohttp_client.py")] + tail
        else:
            raise ValueError(client)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0 and r.stdout.strip(), "%s exited %d:\n%s\n%s" % (client, r.returncode,
                                                                                  r.stdout, r.stderr[-3000:])
        return json.loads(r.stdout.strip().splitlines()[-1])

    def _curl(self, scenario, endpoint, url, auth, body, timeout):
        self.n += 1
        tag = str(self.tmp / ("curl%d" % self.n))
        base = ["-sS", "-v", "--max-time", str(timeout)] + endpoint.curl_args()
        ah = ["-H", "Authorization: " + auth] if auth else []

        def transfer(i, args, u):
            return base + args + ["-o", "%s.body%d" % (tag, i), "-D", "%s.head%d" % (tag, i),
                                  "-w", "%{json}\\n", u]

        if scenario in ("put-expect", "put-expect-retry"):
            argv = transfer(0, ["-T", body.path] + ah, url)  # curl adds Expect: 100-continue to a PUT itself
        elif scenario == "put":
            argv = transfer(0, ["-T", body.path, "-H", "Expect:"] + ah, url)
        elif scenario == "put-chunked":
            argv = transfer(0, ["-T", body.path, "-H", "Transfer-Encoding: chunked", "-H", "Expect:"] + ah, url)
        elif scenario == "keepalive":
            origin = url.split("/files/")[0]
            argv = (transfer(0, [], origin + "/_status") + ["--next"] +
                    transfer(1, ["-T", body.path, "-H", "Expect:"] + ah, url) + ["--next"] +
                    transfer(2, ah, url))
        else:
            raise ValueError(scenario)
        r = subprocess.run(["curl"] + argv, capture_output=True, timeout=timeout + 30)
        err = r.stderr.decode("utf-8", "replace")
        infos = [json.loads(l) for l in r.stdout.decode().splitlines() if l.startswith("{")]
        steps = []
        for i, info in enumerate(infos):
            try:
                data = open("%s.body%d" % (tag, i), "rb").read()
            except OSError:
                data = b""
            heads = open("%s.head%d" % (tag, i), "rb").read().decode("latin-1") if os.path.exists(
                "%s.head%d" % (tag, i)) else ""
            blocks = [b for b in heads.split("\r\n\r\n") if b.startswith("HTTP/")]
            finals = [b for b in blocks if not b.split(" ", 2)[1].startswith("1")]
            for blk in finals[:-1]:  # an earlier final response in this transfer: curl's own retry after a 417
                steps.append({"method": "PUT", "status": int(blk.split(" ", 2)[1]), "body": None,
                              "connection": _header(blk, "connection"), "reused": None,
                              "got_100": False, "sent_expect": True})
            code = info.get("http_code") or info.get("response_code") or None
            steps.append({"method": info.get("method"), "status": code or None, "connection":
                          _header(finals[-1], "connection") if finals else None,
                          "body": data[:4096].decode("utf-8", "replace"), "body_len": len(data),
                          "body_sha256": hashlib.sha256(data).hexdigest(),
                          "reused": info.get("num_connects") == 0, "num_connects": info.get("num_connects"),
                          "size_upload": info.get("size_upload"),
                          "got_100": any(b.startswith("HTTP/1.1 100") for b in blocks),
                          "error": info.get("errormsg") or None})
        last = steps[-1] if steps else {}
        error = None
        if r.returncode != 0:
            error = [l for l in err.splitlines() if l.startswith("curl: (")] or ["curl exited %d" % r.returncode]
            error = error[-1]
        return {"client": "curl", "scenario": scenario, "status": last.get("status"), "body": last.get("body", ""),
                "error": error, "steps": steps, "sent_expect": "> Expect: 100-continue" in err, "verbose": err}


def _header(block, name):
    for line in block.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name:
            return v.strip()
    return None


@pytest.fixture
def run(request, tmp_path):
    return Runner(request, tmp_path)


def summary(res):
    """What a failure message shows of a client's result."""
    res = dict(res)
    res.pop("verbose", None)
    return json.dumps(res)[:3000]


def json_body(res):
    try:
        return json.loads(res["body"])
    except (TypeError, ValueError):
        raise AssertionError("not a JSON body: " + summary(res))


def access_lines(dut, mark, name):
    """The device's access-log lines for requests to /files/name since the mark."""
    return [l for l in dut.lines[mark:] if ('/files/%s HTTP/1.1"' % name) in l]


def stored(dut, name, auth=AUTH):
    """The committed bytes of a file: the host reads its folder, a board is asked over plain HTTP."""
    if dut.storage is not None:
        return dut.read_file(name)
    r = request(Endpoint(dut.device.http, False), "GET", "/files/" + name, None, {"Authorization": auth}, timeout=60)
    assert r.status in (200, 404), r
    return r.body if r.status == 200 else None


def settle(dut, text, mark, timeout=10):
    """Waits for a log line the request produced (the console reader thread may lag the client)."""
    return dut.wait_for_log(text, timeout=timeout, start=mark)


# ---- 1. Expect: 100-continue, accepted ----------------------------------------------------------

def check_expect_accepted(launch, run, tmp_path, client):
    dut = launch(SETTINGS)
    body = Body(tmp_path, MIB)
    mark = dut.log_mark()
    res = run(client, "put-expect", dut.web, "/files/fw.bin", AUTH, body)
    assert res["status"] == 201, summary(res)
    doc = json_body(res)
    assert doc["sha256"] == body.sha256 and doc["size"] == MIB, summary(res)
    if client == "curl":
        assert res["sent_expect"], "curl sent no Expect: 100-continue"
    if client in ("curl", "go", "node-http"):  # the ones that can tell
        assert res["steps"][0]["got_100"], "no 100 Continue reached the client: " + summary(res)
    settle(dut, '"PUT /files/fw.bin HTTP/1.1" 201 %d' % MIB, mark)
    assert stored(dut, "fw.bin") == body.data


@HOST_ONLY
@pytest.mark.parametrize("client", clients(["curl", "go", "node-http", "node-fetch", "chromium-fetch",
                                            "chromium-xhr"], NO_EXPECT))
def test_expect_upload_accepted(launch, run, tmp_path, client):
    """Scenario 1 (and 7 on host-https): 100, then 201 with the body's SHA-256; the bytes are on storage."""
    check_expect_accepted(launch, run, tmp_path, client)


@pytest.mark.parametrize("client", ["aiohttp"])
def test_expect_upload_accepted_on_every_target(launch, run, tmp_path, client):
    """Scenario 1 on the boards too (and 7 over HTTPS)."""
    check_expect_accepted(launch, run, tmp_path, client)


@HOST_ONLY
@pytest.mark.parametrize("client", ["chromium-fetch", "chromium-xhr"])
def test_browser_upload_accepted(launch, run, tmp_path, client):
    """A browser's upload (no Expect, Content-Length): 201 with the SHA-256 of what the page sent."""
    dut = launch(SETTINGS)
    body = Body(tmp_path, MIB, seed=11)
    res = run(client, "put", dut.web, "/files/page.bin", AUTH, body)
    assert res["status"] == 201, summary(res)
    assert json_body(res)["sha256"] == body.sha256
    assert stored(dut, "page.bin") == body.data


# ---- 2. Expect: 100-continue, refused: the body is not sent -------------------------------------

def check_expect_refused(launch, run, proxy_for, tmp_path, client):
    dut = launch(SETTINGS)
    proxy = proxy_for(dut)
    body = Body(tmp_path, MIB)
    mark = dut.log_mark()
    res = run(client, "put-expect", proxy.web, "/files/x.bin", "Bearer wrong", body)
    assert res["status"] == 417, summary(res)
    doc = json_body(res)
    assert doc["error"] == "expectation_failed" and doc["message"], summary(res)
    if client == "curl":
        assert res["steps"][-1]["size_upload"] == 0, summary(res)
    settle(dut, '"PUT /files/x.bin HTTP/1.1" 417 0', mark)
    proxy.wait_idle()
    sent = sum(c["up"] for c in proxy.snapshot())
    assert sent < 64 * 1024, "the client sent %d bytes after asking for 100-continue and getting 417" % sent
    assert len(access_lines(dut, mark, "x.bin")) == 1  # and did not try again
    assert dut.files() == []


@HOST_ONLY
@pytest.mark.parametrize("client", clients(["curl", "go", "node-http", "node-fetch", "chromium-fetch",
                                            "chromium-xhr"], NO_EXPECT))
def test_expect_upload_refused_body_never_sent(launch, run, proxy_for, tmp_path, client):
    """Scenario 2 (and 7 on host-https): a wrong token gets 417 with the JSON error, and the client sends no body.

    The signal that no body crossed is the counting proxy: what the client sent on the wire (heads, and the
    TLS handshake on HTTPS) stays far below the 1 MiB body."""
    check_expect_refused(launch, run, proxy_for, tmp_path, client)


@pytest.mark.parametrize("client", ["aiohttp"])
def test_expect_upload_refused_on_every_target(launch, run, proxy_for, tmp_path, client):
    """Scenario 2 on the boards too (and 7 over HTTPS)."""
    check_expect_refused(launch, run, proxy_for, tmp_path, client)


# ---- 3. Retryable 417, and the retry on the same connection --------------------------------------

def check_retry(launch, run, proxy_for, tmp_path, client):
    dut = launch(USERS, policy=BASIC_USERS)
    proxy = proxy_for(dut)
    body = Body(tmp_path, MIB, seed=3)
    mark = dut.log_mark()
    res = run(client, "put-expect-retry", proxy.web, "/files/r.bin", ALICE, body)
    steps = res["steps"]
    assert [s["status"] for s in steps] == [417, 201], summary(res)
    assert steps[0]["connection"] is None, "a retryable 417 must not carry Connection: close: " + summary(res)
    assert json_body(res)["sha256"] == body.sha256
    settle(dut, '"PUT /files/r.bin HTTP/1.1" 201 %d' % MIB, mark)
    lines = access_lines(dut, mark, "r.bin")
    assert len(lines) == 2 and '" 417 0' in lines[0] and '" 201 %d' % MIB in lines[1], lines
    proxy.wait_idle(timeout=5)
    conns = [c for c in proxy.snapshot() if c["up"] > 0]
    sent = sum(c["up"] for c in conns)
    assert MIB < sent < MIB + MIB // 8, "the body crossed %.2f times" % (sent / MIB)
    assert len(conns) == 1, "the retry went out on a new connection (%d connections)" % len(conns)
    if client == "go":
        assert steps[1]["reused"] is True, summary(res)
    if client == "node-http":
        assert steps[1]["socket"] == steps[0]["socket"], summary(res)
    if client == "curl":
        assert steps[-1]["num_connects"] == 1, summary(res)
    assert stored(dut, "r.bin", ALICE) == body.data


@HOST_ONLY
@pytest.mark.parametrize("client", clients(["node-http", "aiohttp", "node-fetch", "chromium-fetch", "chromium-xhr"],
                                           NO_EXPECT))
def test_retryable_417_then_retry_without_expect_on_the_same_connection(launch, run, proxy_for, tmp_path, client):
    """Scenario 3: basic_users.lua answers an Expect upload with a retryable 417 (no Connection: close); the
    application sends the same PUT again without Expect on the same client and connection: 201, body sent once."""
    check_retry(launch, run, proxy_for, tmp_path, client)


@pytest.mark.parametrize("client", ["curl", "go"])
def test_retryable_417_retry_on_every_target(launch, run, proxy_for, tmp_path, client):
    """Scenario 3 on the boards too: curl retries by itself after a 417; the Go program retries on its client."""
    check_retry(launch, run, proxy_for, tmp_path, client)


# ---- 4. A large upload refused without Expect: the status must arrive every time -----------------

def check_refused_large(launch, run, tmp_path, client, runs=RUNS):
    dut = launch(SETTINGS)
    body = Body(tmp_path, 4 * MIB, seed=5)
    outcomes = []
    for i in range(runs):
        res = run(client, "put", dut.web, "/files/big.bin", "Bearer wrong", body)
        ok = res["status"] == 403
        if ok:
            doc = json_body(res)
            ok = doc.get("error") == "forbidden" and bool(doc.get("message"))
        outcomes.append((ok, res["status"], res["error"], (res.get("body") or "")[:200]))
    failed = [o for o in outcomes if not o[0]]
    assert not failed, "%d of %d runs did not see the 403: %s\ndevice log:\n%s" % (
        len(failed), runs, "; ".join("status=%s error=%s body=%r" % o[1:] for o in failed),
        "\n".join(dut.lines[-40:]))
    assert dut.files() == []


@HOST_ONLY
@pytest.mark.parametrize("client", ["curl", "go", "node-http", "node-fetch", "aiohttp", "chromium-fetch",
                                    "chromium-xhr"])
def test_refused_large_upload_without_expect_status_arrives(launch, run, tmp_path, client):
    """Scenario 4: a 4 MiB PUT with a wrong token and no Expect; the application sees the 403 and its JSON body
    in every run (the device drains the refused body and closes gracefully: no reset destroys the response)."""
    check_refused_large(launch, run, tmp_path, client)


@pytest.mark.parametrize("client", ["go", "node-fetch"])
def test_refused_large_upload_status_arrives_on_every_target(launch, run, tmp_path, client):
    """Scenario 4 on the boards too, with the two clients that lost the status most often."""
    check_refused_large(launch, run, tmp_path, client)


# ---- 5. Chunked uploads --------------------------------------------------------------------------

@HOST_ONLY
@pytest.mark.parametrize("client", clients(["curl", "go", "node-http", "node-fetch", "aiohttp", "chromium-fetch",
                                            "chromium-xhr"], NO_CHUNKED))
def test_chunked_upload_accepted(launch, run, tmp_path, client):
    """Scenario 5: a chunked 1 MiB upload is stored whole; the answer carries its SHA-256."""
    dut = launch(SETTINGS)
    body = Body(tmp_path, MIB, seed=9)
    mark = dut.log_mark()
    res = run(client, "put-chunked", dut.web, "/files/ch.bin", AUTH, body)
    assert res["status"] == 201, summary(res)
    assert json_body(res)["sha256"] == body.sha256
    settle(dut, '"PUT /files/ch.bin HTTP/1.1" 201', mark)
    assert stored(dut, "ch.bin") == body.data


@HOST_ONLY
@pytest.mark.parametrize("client", clients(["curl", "go", "node-http", "node-fetch", "aiohttp", "chromium-fetch",
                                            "chromium-xhr"], NO_CHUNKED))
def test_chunked_upload_over_quota(launch, run, tmp_path, client):
    """Scenario 5: a chunked upload larger than the free space gets 413 or 507 with a JSON error, mid-stream;
    the application sees it, nothing is stored and the space is back."""
    dut = launch({"token": TOKEN, "capacity": "256K"})
    free = request(dut.web, "GET", "/_status").json()["storage"]["free"]
    body = Body(tmp_path, MIB, seed=13)
    res = run(client, "put-chunked", dut.web, "/files/over.bin", AUTH, body)
    assert res["status"] in (413, 507), summary(res)
    doc = json_body(res)
    assert doc["error"] in ("content_too_large", "insufficient_storage") and doc["message"], \
        summary(res)
    assert dut.files() == []
    assert request(dut.web, "GET", "/_status").json()["storage"]["free"] == free


# ---- 6. Keep-alive: several requests on one connection -------------------------------------------

@HOST_ONLY
@pytest.mark.parametrize("client", ALL_CLIENTS)
def test_keepalive_requests_share_one_connection(launch, run, proxy_for, tmp_path, client):
    """Scenario 6: GET /_status, PUT, GET the file back on one client: all answered, one connection
    (the proxy counts connections; Go, Node's http, aiohttp and curl also say whether they reused one)."""
    dut = launch(SETTINGS)
    proxy = proxy_for(dut)
    body = Body(tmp_path, MIB, seed=17)
    res = run(client, "keepalive", proxy.web, "/files/k.bin", AUTH, body)
    steps = res["steps"]
    assert [s["status"] for s in steps] == [200, 201, 200], summary(res)
    assert json.loads(steps[0]["body"])["storage"]["capacity"] > 0
    assert json.loads(steps[1]["body"])["sha256"] == body.sha256
    assert steps[2]["body_len"] == MIB and steps[2]["body_sha256"] == body.sha256
    for s in steps[1:]:
        assert s["reused"] in (True, None), "the client opened a new connection: " + summary(res)
    used = [c for c in proxy.snapshot() if c["up"] > 0]  # every request has crossed: the answers came
    # undici sends a request with a body on a fresh connection even when an idle one is there (it does the
    # same against any server); its two GETs share one. Three connections would mean no keep-alive.
    most = 2 if client == "node-fetch" else 1
    assert len(used) <= most, "%d connections carried the 3 requests: %s" % (len(used), proxy.snapshot())
    assert stored(dut, "k.bin") == body.data


@pytest.mark.targets("host", why="on HTTPS the TLS session limit (2 on the host, 1 on a board) is below the pool of "
                     "4 connections; the boards run a representative subset")
def test_idle_keepalive_connections_give_way_to_a_new_client(launch, target):
    """Node's keep-alive agent leaves 4 idle connections: the device's whole pool. A new client (curl) is
    served (the oldest idle connection is closed for it, no 503), and the agent's next round still works."""
    dut = launch(SETTINGS)
    node = subprocess.Popen(["node", os.path.join(CLIENTS_DIR, "nodeclient.js"), "http", "hold-idle",
                             dut.web.url("/files/idle.bin"), AUTH], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(node.stdout.readline())
        assert [s["status"] for s in first["steps"]] == [200] * 4, first
        assert len({s["socket"] for s in first["steps"]}) == 4, first
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "-w", "\\n%{http_code}", dut.web.url("/_status")],
                           capture_output=True, text=True, timeout=20)
        code = r.stdout.rsplit("\n", 1)[-1]
        assert code == "200", "a new client was not served while 4 keep-alive connections sat idle: %s %s" % (
            r.stdout[-300:], r.stderr)
        time.sleep(0.3)  # the agent has seen the FIN of the connection that gave way
        node.stdin.write("go\n")
        node.stdin.flush()
        second = json.loads(node.stdout.readline())
        assert [s["status"] for s in second["steps"]] == [200] * 4, second
    finally:
        node.stdin.close()
        try:
            node.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.kill()  # this process only
            node.wait()
