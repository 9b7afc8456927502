"""test_tls.py: HTTPS end to end: TLS 1.3 and 1.2, refused versions and suites, hostile bytes, client certificates, the session limit."""
import hashlib
import os
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from httpwire import Conn, request

TOKEN = "s3cret-T"
AUTH = "Bearer " + TOKEN
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CERTS = os.path.join(ROOT, "build", "certs")
CA = os.path.join(CERTS, "ca.crt")
SERVER = ("--cert", os.path.join(CERTS, "server.crt"), "--key", os.path.join(CERTS, "server.key"))
MAX_TLS = 2  # POSTERN_MAX_TLS_CONNS of the host board
# The scenarios that take `target` (launch) run on both HTTPS targets; the rest
# of this module starts its own simulator.
TARGETS = ("host-https", "mps2-https")

# A policy that shows what it saw of TLS in its message, and accepts only the
# device certificate's CN when config.need_cn is set.
ECHO_POLICY = """
function on_request(req)
  local t = req.tls
  local seen = t and string.format("tls=%s cipher=%s subject=%s fp=%s", t.version, t.cipher,
                                   tostring(t.subject), tostring(t.fingerprint)) or "tls=nil"
  if config.need_cn and (not t or t.subject ~= config.need_cn) then
    return 403, seen
  end
  return 418, seen
end
"""


def cert_path(name):
    return os.path.join(CERTS, name)


def client_context(cert=None, version=None):
    ctx = ssl.create_default_context(cafile=CA)
    if cert is not None:
        ctx.load_cert_chain(cert_path(cert + ".crt"), cert_path(cert + ".key"))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def curl(*args, timeout=60):
    return subprocess.run(["curl", "-sS", "-v", "--cacert", CA] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def s_client(port, *args, timeout=15):
    """openssl s_client against the device; returns (stdout + stderr)."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", CA,
                        "-servername", "localhost"] + list(args),
                       input="", capture_output=True, text=True, timeout=timeout)
    return r.stdout + r.stderr


def status_doc(dev):
    r = request(dev.http, "GET", "/_status")
    assert r.status == 200
    return r.json()


def assert_serving(dev):
    assert request(dev.http, "GET", "/_status").status == 200
    assert request(dev.https, "GET", "/_status", tls=client_context()).status == 200


@pytest.fixture
def dev(start_device):
    return start_device("--set", "token=" + TOKEN, "--capacity", "16M", *SERVER)


def write_policy(tmp_path, text):
    path = tmp_path / "echo_tls.lua"
    path.write_text(text)
    return str(path)


# ---- Uploads and versions --------------------------------------------------------

def test_curl_5mib_upload_over_tls13_with_100_continue(dev, tmp_path):
    body = os.urandom(5 * 1024 * 1024)
    src = tmp_path / "5MiB.bin"
    src.write_bytes(body)
    r = curl("-T", str(src), "-H", "Authorization: " + AUTH, "-H", "Expect: 100-continue",
             "https://127.0.0.1:%d/files/a.bin" % dev.https)
    assert r.returncode == 0, r.stderr
    assert "SSL connection using TLSv1.3" in r.stderr, r.stderr
    assert "< HTTP/1.1 100 Continue" in r.stderr and "< HTTP/1.1 201 Created" in r.stderr, r.stderr
    digest = hashlib.sha256(body).hexdigest()
    assert '"sha256":"%s"' % digest in r.stdout
    with open(os.path.join(dev.storage, "a.bin"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == digest
    tls = status_doc(dev)["memory"]["tls_heap"]
    print("tls_heap after a handshake and a 5 MiB upload:", tls)
    assert 0 < tls["high_water"] <= tls["size"]


def test_download_keepalive_and_tls12_over_python_ssl(dev):
    body = os.urandom(200 * 1024)
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        c = Conn(dev.https, tls=client_context(version=version))
        assert c.sock.version() == {ssl.TLSVersion.TLSv1_3: "TLSv1.3", ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[version]
        c.send(("PUT /files/b.bin HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n"
                % (AUTH, len(body))).encode() + body)
        assert c.read_response().status in (200, 201)
        c.send(("GET /files/b.bin HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\n\r\n" % AUTH).encode())
        got = c.read_response()
        assert got.status == 200 and got.body == body
        c.close()


@pytest.mark.parametrize("flag,version", [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")])
def test_openssl_negotiates_tls13_and_tls12(dev, flag, version):
    out = s_client(dev.https, flag)
    assert "Verify return code: 0 (ok)" in out, out
    assert ("New, %s, Cipher is" % version) in out, out


def test_tls11_is_refused(dev):
    out = s_client(dev.https, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert "Cipher is (NONE)" in out, out
    dev.wait_for_log("protocol version not supported")
    assert_serving(dev)


@pytest.mark.parametrize("suite", ["AES128-SHA256", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA"])
def test_cbc_suites_are_refused(dev, suite):
    out = s_client(dev.https, "-tls1_2", "-cipher", suite + ":@SECLEVEL=0")
    assert "Cipher is (NONE)" in out, out
    assert_serving(dev)


def client_hello(suites):
    """A TLS 1.2 ClientHello offering only `suites`, with P-256 and ECDSA-SHA256."""
    ext = b""
    ext += struct.pack(">HHH", 10, 4, 2) + struct.pack(">H", 23)                 # supported_groups: P-256
    ext += struct.pack(">HHB", 11, 2, 1) + b"\x00"                               # ec_point_formats
    ext += struct.pack(">HHH", 13, 4, 2) + struct.pack(">H", 0x0403)             # signature_algorithms
    cs = b"".join(struct.pack(">H", s) for s in suites)
    hello = b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack(">H", len(cs)) + cs + b"\x01\x00"
    hello += struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(hello))[1:] + hello
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


@pytest.mark.parametrize("name,suites", [
    ("NULL", [0x0002, 0x003B, 0xC006]),   # RSA-NULL-SHA, RSA-NULL-SHA256, ECDHE-ECDSA-NULL-SHA
    ("RC4", [0x0005, 0xC007]),            # RSA-RC4-SHA, ECDHE-ECDSA-RC4-SHA
])
def test_null_and_rc4_suites_get_a_handshake_failure_alert(dev, name, suites):
    with socket.create_connection(("127.0.0.1", dev.https), timeout=10) as s:
        s.sendall(client_hello(suites))
        reply = b""
        deadline = time.monotonic() + 10
        while len(reply) < 7 and time.monotonic() < deadline:
            chunk = s.recv(100)
            if not chunk:
                break
            reply += chunk
    # A fatal alert record: type 21, level 2, handshake_failure (40).
    assert reply[:1] == b"\x15" and reply[5:7] == b"\x02\x28", (name, reply)
    assert_serving(dev)


# ---- Hostile bytes ---------------------------------------------------------------

def test_garbage_and_truncated_handshakes_leave_the_device_serving(dev):
    mark = dev.log_mark()
    with socket.create_connection(("127.0.0.1", dev.https), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(3000))
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except (ConnectionResetError, socket.timeout):
            pass
    dev.wait_for_log("tls: handshake with", start=mark)
    hello = client_hello([0xC02B])
    with socket.create_connection(("127.0.0.1", dev.https), timeout=10) as s:
        s.sendall(hello[: len(hello) // 2])  # then the client goes away mid-handshake
    for _ in range(20):  # random bytes of every size
        with socket.create_connection(("127.0.0.1", dev.https), timeout=10) as s:
            s.sendall(os.urandom(1 + int.from_bytes(os.urandom(2), "big") % 20000))
    time.sleep(0.5)
    assert_serving(dev)
    r = curl("https://127.0.0.1:%d/_status" % dev.https)
    assert r.returncode == 0 and '"tls_heap"' in r.stdout, r.stderr


# ---- Client certificates ---------------------------------------------------------------

def test_plain_http_has_no_tls_table(start_device, tmp_path):
    dev = start_device("--policy", write_policy(tmp_path, ECHO_POLICY), *SERVER)
    assert request(dev.http, "GET", "/_status").json()["message"] == "tls=nil"
    r = request(dev.https, "GET", "/_status", tls=client_context())
    assert r.json()["message"].startswith("tls=TLSv1.3 cipher=TLS1-3-"), r
    assert "subject=nil fp=nil" in r.json()["message"]


def test_required_client_cert_the_policy_sees_cn_and_fingerprint(start_device, tmp_path):
    dev = start_device("--policy", write_policy(tmp_path, ECHO_POLICY), "--set", "need_cn=device-0001",
                       "--client-ca", CA, "--client-cert", "required", *SERVER)
    r = curl("--cert", cert_path("device.crt"), "--key", cert_path("device.key"),
             "https://127.0.0.1:%d/files/x.bin" % dev.https)
    assert r.returncode == 0, r.stderr
    der = ssl.PEM_cert_to_DER_cert(open(cert_path("device.crt")).read())
    assert "< HTTP/1.1 418" in r.stderr, r.stderr
    assert "subject=device-0001 fp=%s" % hashlib.sha256(der).hexdigest() in r.stdout, r.stdout
    # Without a certificate the handshake fails cleanly and the device goes on.
    mark = dev.log_mark()
    r = curl("https://127.0.0.1:%d/files/x.bin" % dev.https)
    assert r.returncode != 0
    dev.wait_for_log("tls: handshake with", start=mark)
    # A certificate from a CA the device does not trust: refused as well.
    mark = dev.log_mark()
    r = curl("--cert", cert_path("rogue.crt"), "--key", cert_path("rogue.key"),
             "https://127.0.0.1:%d/files/x.bin" % dev.https)
    assert r.returncode != 0
    assert "client certificate not trusted" in dev.wait_for_log("tls: handshake with", start=mark)
    assert request(dev.http, "GET", "/_status").status == 403  # the policy wants the CN
    r = request(dev.https, "GET", "/_status", tls=client_context(cert="device"))
    assert r.status == 418


def test_optional_client_cert_untrusted_one_gives_no_subject(start_device, tmp_path):
    dev = start_device("--policy", write_policy(tmp_path, ECHO_POLICY), "--client-ca", CA, *SERVER)
    r = request(dev.https, "GET", "/files/x.bin", tls=client_context())
    assert "subject=nil" in r.json()["message"]
    r = request(dev.https, "GET", "/files/x.bin", tls=client_context(cert="rogue"))
    assert "subject=nil fp=nil" in r.json()["message"]
    r = request(dev.https, "GET", "/files/x.bin", tls=client_context(cert="device", version=ssl.TLSVersion.TLSv1_2))
    assert "tls=TLSv1.2" in r.json()["message"] and "subject=device-0001" in r.json()["message"]


def test_device_certs_example_policy(start_device):
    dev = start_device("--policy", os.path.join(ROOT, "scripts", "examples", "device_certs.lua"),
                       "--set", "devices=device-0001,device-0002", "--client-ca", CA, *SERVER)
    ok = request(dev.https, "PUT", "/files/log.txt", body=b"hello", tls=client_context(cert="device"))
    assert ok.status == 201, ok
    anon = request(dev.https, "PUT", "/files/log.txt", body=b"hello", tls=client_context())
    assert anon.status == 403, anon
    plain = request(dev.http, "PUT", "/files/log.txt", body=b"hello")
    assert plain.status == 403, plain


# ---- Limits and memory -------------------------------------------------------------

def test_tls_session_limit_closes_the_next_one_plain_http_still_answers(dev):
    base = status_doc(dev)["memory"]["tls_heap"]["in_use"]
    held = [socket.create_connection(("127.0.0.1", dev.https), timeout=10) for _ in range(MAX_TLS)]
    try:
        time.sleep(0.3)
        mark = dev.log_mark()
        with socket.create_connection(("127.0.0.1", dev.https), timeout=10) as s:
            s.sendall(client_hello([0xC02B]))
            s.settimeout(5)
            try:
                assert s.recv(100) == b""  # closed before any TLS byte
            except ConnectionResetError:
                pass
        dev.wait_for_log("all %d TLS sessions busy" % MAX_TLS, start=mark)
        assert request(dev.http, "GET", "/_status").status == 200
        doc = status_doc(dev)
        assert doc["tls"]["sessions"] == MAX_TLS and doc["tls"]["refused_over_limit"] >= 1
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    assert status_doc(dev)["memory"]["tls_heap"]["in_use"] == base
    assert request(dev.https, "GET", "/_status", tls=client_context()).status == 200


def test_handshake_timeout_frees_the_session(start_device):
    dev = start_device(*SERVER)
    s = socket.create_connection(("127.0.0.1", dev.https), timeout=20)
    s.settimeout(15)
    t0 = time.monotonic()
    try:
        assert s.recv(10) == b""
    except ConnectionResetError:
        pass
    assert 5 < time.monotonic() - t0 < 14
    dev.wait_for_log("did not complete in")
    s.close()


def test_tls_heap_back_at_baseline_after_mixed_traffic(dev, tmp_path):
    base = status_doc(dev)["memory"]["tls_heap"]
    for i in range(10):
        r = request(dev.https, "PUT", "/files/f%d.bin" % i, body=os.urandom(50000),
                    headers={"Authorization": AUTH}, tls=client_context())
        assert r.status == 201
        with socket.create_connection(("127.0.0.1", dev.https), timeout=10) as s:
            s.sendall(os.urandom(100))
        c = Conn(dev.https, tls=client_context())
        c.send(("PUT /files/cut.bin HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nContent-Length: 100000\r\n\r\n"
                % AUTH).encode() + b"x" * 5000)
        c.sock.close()  # mid-body
    time.sleep(1.0)
    doc = status_doc(dev)
    tls = doc["memory"]["tls_heap"]
    print("tls_heap baseline", base, "after", tls, "sessions", doc["tls"])
    assert tls["in_use"] == base["in_use"]
    assert tls["high_water"] > 0
    assert doc["tls"]["sessions"] == 0 and doc["connections"]["active"] <= 1
    assert not os.path.exists(os.path.join(dev.storage, "cut.bin"))


# ---- Closing ---------------------------------------------------------------------

def test_connection_close_ends_with_close_notify(dev):
    c = Conn(dev.https, tls=client_context())
    c.send(b"GET /_status HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
    assert c.read_response().status == 200
    c.sock.settimeout(5)
    assert c.sock.recv(100) == b""  # a clean close_notify: Python raises SSLEOFError without one
    c.close()


def test_refused_upload_over_tls_answer_survives_the_body_in_flight(dev):
    c = Conn(dev.https, tls=client_context())
    body = os.urandom(1024 * 1024)
    c.send(("PUT /files/no.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer wrong\r\nContent-Length: %d\r\n\r\n"
            % len(body)).encode())
    try:
        c.send(body)
    except (ssl.SSLError, OSError):
        pass  # the device may stop reading once its linger is over
    r = c.read_response()
    assert r.status == 403 and r.headers.get("connection") == "close", r
    c.close()
    assert not os.path.exists(os.path.join(dev.storage, "no.bin"))
    time.sleep(0.5)
    assert status_doc(dev)["tls"]["sessions"] == 0
    assert_serving(dev)


def test_client_close_notify_mid_request_frees_the_session(dev):
    c = Conn(dev.https, tls=client_context())
    c.send(b"GET /_status HTTP/1.1\r\nHost: d\r\n")  # an unfinished head
    raw = c.sock.unwrap()  # sends close_notify
    raw.close()
    deadline = time.monotonic() + 5
    while status_doc(dev)["tls"]["sessions"] != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status_doc(dev)["tls"]["sessions"] == 0
    assert_serving(dev)


# ---- KeyUpdate (RFC 8446 §4.6.3) --------------------------------------------------

class SClient:
    """openssl s_client kept open: what is written goes out as records, output is read by a thread.

    On a line of its own, s_client takes 'K' as "send a KeyUpdate and request one back" and 'k'
    as a KeyUpdate alone (only while neither -quiet nor -ign_eof is given, and only when the
    letter starts what it reads from stdin at once: so every write waits until s_client has
    sent it, and no data may start with K, k, Q or R). -crlf turns each LF into CRLF, so bodies
    carry no LF; -msg logs every record (a TLS 1.3 record header shows as "TLS 1.2": its
    legacy version)."""

    def __init__(self, port):
        self.proc = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", CA,
                                      "-servername", "localhost", "-tls1_3", "-crlf", "-msg"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace", bufsize=1)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.wait_for("Verify return code: 0 (ok)")

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def count(self, text):
        with self.cond:
            return sum(text in line for line in self.lines)

    def wait_for(self, text, n=1, timeout=30):
        """Waits until n output lines contain text."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while sum(text in line for line in self.lines) < n:
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError("s_client: %d x %r not seen:\n%s" % (n, text, "\n".join(self.lines[-60:])))
                self.cond.wait(min(left, 0.5))

    def send(self, text):
        """Writes text (at most PIPE_BUF bytes: one read for s_client) and waits until its record is out."""
        assert len(text) <= 4000
        sent = self.count(">>> TLS 1.2, RecordHeader")
        self.proc.stdin.write(text)
        self.proc.stdin.flush()
        self.wait_for(">>> TLS 1.2, RecordHeader", sent + 1)

    def key_update(self, request_back):
        """'K' or 'k'; with request_back, waits for the device's own KeyUpdate as well."""
        ours, theirs = self.count(">>> TLS 1.3, Handshake [length 0005], KeyUpdate"), self.count(
            "<<< TLS 1.3, Handshake [length 0005], KeyUpdate")
        self.proc.stdin.write("K\n" if request_back else "k\n")
        self.proc.stdin.flush()
        self.wait_for(">>> TLS 1.3, Handshake [length 0005], KeyUpdate", ours + 1)
        if request_back:
            self.wait_for("<<< TLS 1.3, Handshake [length 0005], KeyUpdate", theirs + 1)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()  # end of input: s_client sends close_notify and exits
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)


def tls_lines_since(dut, mark):
    return [line for line in dut.lines[mark:] if line.startswith("tls:")]


def plain_status(dut):
    """/_status over plain HTTP: a board has one TLS session, which the scenario may hold."""
    from conftest import Endpoint
    r = request(Endpoint(dut.device.http, False), "GET", "/_status", timeout=30)
    assert r.status == 200
    return r.json()


@pytest.fixture
def sclient():
    clients = []

    def start(port):
        c = SClient(port)
        clients.append(c)
        return c

    yield start
    for c in clients:
        c.close()


def test_key_update_mid_connection_keeps_it_serving(launch, sclient):
    dut = launch({"token": TOKEN, "capacity": "3M"})  # one board image for the three scenarios
    heap = plain_status(dut)["memory"]["tls_heap"]["in_use"]
    dut.wait_for_log('"GET /_status HTTP/1.1" 200')  # a board's console may print it a little later
    mark = dut.log_mark()
    c = sclient(dut.web.port)
    get = "GET /_status HTTP/1.1\nHost: d\n\n"
    c.send(get)
    c.wait_for("HTTP/1.1 200 OK", 1)
    c.key_update(request_back=True)  # the device updates its receive keys, then answers with its own
    c.send(get)
    c.wait_for("HTTP/1.1 200 OK", 2)
    c.key_update(request_back=False)  # receive keys only; no answer is due
    c.key_update(request_back=True)
    c.send(get)
    c.wait_for("HTTP/1.1 200 OK", 3)
    assert c.count("<<< TLS 1.3, Handshake [length 0005], KeyUpdate") == 2  # one per request, none for 'k'
    c.close()
    assert c.proc.returncode == 0, "\n".join(c.lines[-40:])
    assert tls_lines_since(dut, mark) == []
    assert sum('"GET /_status HTTP/1.1" 200' in line for line in dut.lines[mark:]) == 3
    # Every generation of keys was given back (PSA keys live in the TLS heap).
    deadline = time.monotonic() + 10
    while plain_status(dut)["tls"]["sessions"] != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert plain_status(dut)["memory"]["tls_heap"]["in_use"] == heap


def test_key_update_between_head_and_body_and_mid_body(launch, sclient):
    dut = launch({"token": TOKEN, "capacity": "3M"})
    mark = dut.log_mark()
    c = sclient(dut.web.port)
    # Hex: no LF (-crlf would change it) and no chunk that starts with a command letter.
    body = os.urandom(24000).hex()
    c.send("PUT /files/ku.bin HTTP/1.1\nHost: d\nAuthorization: %s\nContent-Length: %d\n"
           "Expect: 100-continue\n\n" % (AUTH, len(body)))
    c.wait_for("HTTP/1.1 100 Continue")
    c.key_update(request_back=True)  # between the head (and its 100) and the body
    for i in range(0, len(body), 4000):
        if i == 24000:
            c.key_update(request_back=True)  # mid-body
        if i == 36000:
            c.key_update(request_back=False)
        c.send(body[i:i + 4000])
    c.wait_for("HTTP/1.1 201 Created")
    c.wait_for('"sha256":"%s"' % hashlib.sha256(body.encode()).hexdigest())
    c.close()
    assert tls_lines_since(dut, mark) == []
    assert dut.read_file("ku.bin") == body.encode()


def test_key_update_during_a_download(launch, sclient):
    # The request arrives while the device streams records: its answer may have
    # to wait for the output mbedTLS holds, and must come before the next record.
    dut = launch({"token": TOKEN, "capacity": "3M"})
    body = os.urandom(1024 * 1024)
    r = request(dut.web, "PUT", "/files/big.bin", body=body, headers={"Authorization": AUTH}, timeout=60)
    assert r.status == 201, r
    mark = dut.log_mark()
    c = sclient(dut.web.port)
    c.send("GET /files/big.bin HTTP/1.1\nHost: d\nAuthorization: %s\n\n" % AUTH)
    c.wait_for("HTTP/1.1 200 OK")
    for _ in range(3):
        c.key_update(request_back=True)
    c.send("GET /_status HTTP/1.1\nHost: d\n\n")  # pipelined: answered after the download
    c.wait_for("HTTP/1.1 200 OK", 2, timeout=60)
    c.wait_for('"responses":{')
    c.close()
    assert c.proc.returncode == 0, "\n".join(c.lines[-40:])
    assert tls_lines_since(dut, mark) == []
