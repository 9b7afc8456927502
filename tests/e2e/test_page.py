"""test_page.py: the upload page at GET /, driven in headless Chromium over the DevTools protocol: load it, see a
refusal's message with a wrong token, upload 2 MiB with progress events and the digest checked by both sides,
download it, delete it; a screenshot lands in build/test/. Also the page's bytes and headers on the wire."""
import asyncio
import base64
import gzip
import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT, wait_until
from httpwire import request

TARGETS = ("host", "mps2", "lm3s")  # plain HTTP on 127.0.0.1: a secure context, so the page has Web Crypto

TOKEN = "p4ge-T"
SCREENSHOTS = os.path.join(ROOT, "build", "test")


@pytest.fixture
def dev(launch):
    return launch({"token": TOKEN, "capacity": "3M"})


# ---- The page on the wire ---------------------------------------------------------------------

def test_the_page_is_served_gzip_compressed_and_is_the_source(dev):
    source = open(os.path.join(ROOT, "src", "page.html"), "rb").read()
    r = request(dev.web, "GET", "/", None, {"Accept-Encoding": "gzip, deflate, br"})
    assert r.status == 200, r
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
    assert int(r.headers["content-length"]) == len(r.body) < 4096  # a few KiB of flash
    page = gzip.decompress(r.body)
    assert b"crypto.subtle.digest" in page and b"<title>postern</title>" in page
    # The build only drops leading blanks and empty lines.
    squeeze = lambda b: b"\n".join(l.lstrip() for l in b.splitlines() if l.strip())
    assert squeeze(page) == squeeze(source)
    # No token needed, HEAD has the same head and no body, no Accept-Encoding at all takes any coding.
    h = request(dev.web, "HEAD", "/")
    assert h.status == 200 and h.body == b"" and h.headers["content-length"] == r.headers["content-length"]
    assert request(dev.web, "GET", "/").body == r.body


@pytest.mark.parametrize("accept", ["identity", "gzip;q=0", "br, *;q=0", "deflate"])
def test_a_client_that_refuses_gzip_gets_406(dev, accept):
    r = request(dev.web, "GET", "/", None, {"Accept-Encoding": accept})
    assert r.status == 406, r
    assert r.json()["error"] == "not_acceptable" and "gzip" in r.json()["message"]


@pytest.mark.parametrize("accept", ["GZIP", "x-gzip", "br;q=1.0, gzip;q=0.5", "*", "identity, *;q=0.1"])
def test_a_client_that_takes_gzip_gets_the_page(dev, accept):
    r = request(dev.web, "GET", "/", None, {"Accept-Encoding": accept})
    assert r.status == 200 and r.body[:2] == b"\x1f\x8b", r


# ---- Headless Chromium ------------------------------------------------------------------------

class Browser:
    """One headless Chromium with its own profile, driven over its DevTools websocket (aiohttp)."""

    def __init__(self, profile):
        self.profile = profile
        args = ["chromium", "--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", "--window-size=900,800",
                "--user-data-dir=" + profile, "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = os.path.join(profile, "DevToolsActivePort")
        assert wait_until(lambda: os.path.exists(port_file) and open(port_file).read().count("\n") >= 1, 30), \
            "chromium wrote no DevToolsActivePort"
        self.port = int(open(port_file).read().split("\n")[0])
        self.next_id = 0
        self.requests = []  # what the page sent, once Network is enabled

    async def connect(self, session):
        async with session.get("http://127.0.0.1:%d/json/list" % self.port) as r:
            pages = [t for t in await r.json() if t["type"] == "page"]
        self.ws = await session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)

    async def call(self, method, **params):
        self.next_id += 1
        me = self.next_id
        await self.ws.send_json({"id": me, "method": method, "params": params})
        while True:
            msg = json.loads((await self.ws.receive(timeout=60)).data)
            if msg.get("method") == "Network.requestWillBeSent":
                self.requests.append(msg["params"]["request"])
            if msg.get("id") == me:
                assert "error" not in msg, (method, msg)
                return msg["result"]

    async def js(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    async def until(self, expr, timeout=60):
        """Polls a JS expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = await self.js(expr)
            if v:
                return v
            await asyncio.sleep(0.1)
        raise AssertionError("never true in the page: %s (message: %r)" % (expr, await self.js(MSG)))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # the browser by its PID; it ends its own children
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of its own process group only
        except ProcessLookupError:
            pass


MSG = "document.getElementById('msg').textContent"
ROWS = "Array.from(document.querySelectorAll('#list tr'), r => Array.from(r.cells, c => c.textContent))"


def set_token(token):
    return ("(() => { const t = document.getElementById('tok'); t.value = %s;"
            " t.dispatchEvent(new Event('change')); return true; })()" % json.dumps(token))


def click(name, label):
    return ("(() => { for (const r of document.querySelectorAll('#list tr')) if (r.cells[0].textContent === %s)"
            " for (const b of r.querySelectorAll('button')) if (b.textContent === %s) { b.click(); return true; }"
            " return false; })()" % (json.dumps(name), json.dumps(label)))


async def choose_file(b, path):
    doc = await b.call("DOM.getDocument")
    node = await b.call("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="#file")
    await b.call("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[path])


async def drive(b, dev, url, files, downloads, shot):
    import aiohttp
    async with aiohttp.ClientSession() as session:
        await b.connect(session)
        await b.call("Page.enable")
        await b.call("Page.setDownloadBehavior", behavior="allow", downloadPath=downloads)
        await b.call("Page.navigate", url=url)
        await b.until("document.readyState === 'complete' && typeof upload === 'function'")
        assert await b.js("window.isSecureContext && !!crypto.subtle") is True

        # A wrong token: the policy's message, from the JSON body, for the listing and for an upload.
        await b.js(set_token("not-the-token"))
        await b.until(MSG + ".includes('403: invalid token')")
        await b.js("document.getElementById('msg').textContent = ''")
        await choose_file(b, files["small"])
        await b.until(MSG + ".includes('403: invalid token')")
        assert await b.js("document.getElementById('msg').className") == "err"
        assert dev.files() == []

        # The token, kept in sessionStorage; 2 MiB with progress events and the digest compared.
        await b.js(set_token(TOKEN))
        assert await b.js("sessionStorage.getItem('postern-token')") == TOKEN
        # Upload at 4 MiB/s (DevTools' network emulation), so that progress has time to show.
        await b.call("Network.enable")
        await b.call("Network.emulateNetworkConditions", offline=False, latency=0, downloadThroughput=-1,
                     uploadThroughput=4 * 1024 * 1024)
        await choose_file(b, files["big"])
        msg = await b.until("(m => m.includes('matches') && m)(" + MSG + ")", timeout=120)
        assert files["big_sha"] in msg and "2097152 bytes" in msg, msg
        puts = [r for r in b.requests if r["method"] == "PUT" and r["url"].endswith("/files/big.bin")]
        digest = base64.b64encode(bytes.fromhex(files["big_sha"])).decode()
        assert puts and puts[-1]["headers"].get("Content-Digest") == "sha-256=:%s:" % digest, puts
        events = int(await b.js("document.getElementById('bar').dataset.events"))
        assert events >= 2, "upload progress events: %d" % events
        assert await b.js("document.getElementById('bar').value") == 1
        await b.call("Network.emulateNetworkConditions", offline=False, latency=0, downloadThroughput=-1,
                     uploadThroughput=-1)
        assert hashlib.sha256(dev.read_file("big.bin")).hexdigest() == files["big_sha"]
        rows = await b.until("(r => r.some(x => x[0] === 'big.bin') && r)(" + ROWS + ")")
        assert ["big.bin", "2097152"] == [r for r in rows if r[0] == "big.bin"][0][:2], rows
        shot_png = await b.call("Page.captureScreenshot", format="png")
        with open(shot, "wb") as f:
            f.write(base64.b64decode(shot_png["data"]))

        # Download through the page (with the token), then delete.
        assert await b.js(click("big.bin", "Download"))
        got = os.path.join(downloads, "big.bin")
        assert wait_until(lambda: os.path.exists(got) and os.path.getsize(got) == 2 * 1024 * 1024, 60)
        assert hashlib.sha256(open(got, "rb").read()).hexdigest() == files["big_sha"]
        assert await b.js(click("big.bin", "Delete"))
        await b.until(MSG + ".includes('deleted big.bin')")
        await b.until("!(" + ROWS + ").some(x => x[0] === 'big.bin')")
        assert dev.files() == []


def test_the_page_in_chromium_uploads_checks_lists_downloads_and_deletes(dev, target, tmp_path):
    big = os.urandom(2 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "small.bin").write_bytes(b"refused\n")
    files = {"big": str(tmp_path / "big.bin"), "small": str(tmp_path / "small.bin"),
             "big_sha": hashlib.sha256(big).hexdigest()}
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    os.makedirs(SCREENSHOTS, exist_ok=True)
    shot = os.path.join(SCREENSHOTS, "page.png" if target == "host" else "page-%s.png" % target)
    profile = tempfile.mkdtemp(prefix="chromium-", dir=str(tmp_path))
    b = Browser(profile)
    try:
        asyncio.run(drive(b, dev, dev.web.url("/"), files, str(downloads), shot))
    finally:
        b.stop()
    assert os.path.getsize(shot) > 10000
