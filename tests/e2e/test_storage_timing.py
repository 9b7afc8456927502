"""test_storage_timing.py: a slow medium (--storage-latency, the simulator's): the network stays alive, uploads end right.

With --storage-latency MS every 4 KiB erased ahead of an upload's writes, every
commit and every remove keeps the one medium busy for MS milliseconds, and the
storage calls answer STORAGE_PENDING meanwhile (storage.h's time contract). An
upload then runs at the medium's pace, 4 KiB per MS ms: TCP's window closes
while a write waits (the core keeps the bytes and does not open it), so the
client slows down and no segment is dropped, while every other connection is
served as before.
"""
import hashlib
import json
import os
import statistics
import subprocess
import threading
import time

import pytest

from conftest import CERTS
from httpwire import Conn, request

TARGETS = ("host", "host-rtos")  # --storage-latency is a simulator option; host-rtos: the storage thread resumes
TOKEN = "t1m1ng"
AUTH = "Bearer " + TOKEN
UNIT = 4096
MIB = 1024 * 1024


@pytest.fixture
def slow(target, start_device):
    """Factory: a simulator whose medium is busy `latency` ms per unit of work."""
    def start(latency):
        return start_device("--storage-latency", str(latency), "--set", "token=" + TOKEN, "--capacity", "8M")
    return start


def status_doc(port):
    r = request(port, "GET", "/_status")
    assert r.status == 200, r
    return r.json()


def pool_errors(doc):
    """lwIP's counters that grow when a frame finds no pbuf (and the link's drops, were they shown)."""
    lwip = doc["memory"]["lwip"]
    return {"pbuf_pool.err": lwip["pbuf_pool"]["err"], "link.drop": doc.get("link", {}).get("drop", 0)}


def upload_progress(storage):
    """Bytes the largest upload in progress has in its temporary file."""
    sizes = [os.path.getsize(os.path.join(storage, n)) for n in os.listdir(storage) if n.startswith(".upload-")]
    return max(sizes, default=0)


class StatusProbe:
    """GET /_status every 50 ms on one kept-alive connection, each answer timed, until stopped."""

    def __init__(self, port):
        self.port = port
        self.times = []
        self.errors = []
        self.docs = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        c = None
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                if c is None:
                    c = Conn(self.port, timeout=5)
                c.send(b"GET /_status HTTP/1.1\r\nHost: d\r\n\r\n")
                r = c.read_response(timeout=5)
                self.times.append(time.monotonic() - t)
                if r.status != 200:
                    self.errors.append(r.status)
                else:
                    self.docs.append(r.json())
            except (OSError, EOFError) as e:
                self.errors.append(repr(e))
                c = None
            self.stop.wait(0.05)
        if c is not None:
            c.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)

    def p(self, q):
        s = sorted(self.times)
        return s[min(len(s) - 1, int(q * len(s)))]


def put_expect(port, name, body, timeout):
    """PUT with Expect: 100-continue on one connection: the 100, the body, the final answer."""
    c = Conn(port, timeout=timeout)
    try:
        c.send(("PUT /files/%s HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nContent-Length: %d\r\n"
                "Expect: 100-continue\r\n\r\n" % (name, AUTH, len(body))).encode())
        interim = c.read_response(timeout=5)
        assert interim.status == 100, interim
        for off in range(0, len(body), 16384):
            c.send(body[off:off + 16384])
        return c.read_response(timeout=timeout)
    finally:
        c.close()


def test_slow_medium_status_stays_fast_a_second_upload_proceeds_and_nothing_is_dropped(slow):
    latency = 200
    dev = slow(latency)
    body = os.urandom(MIB)
    second = os.urandom(2 * UNIT + 100)
    medium_s = (len(body) // UNIT) * latency / 1000.0  # 51.2 s: the medium's own limit, 20 KiB/s
    before = pool_errors(status_doc(dev.http))
    result = {}

    def big():
        t = time.monotonic()
        try:
            result["big"] = put_expect(dev.http, "big.bin", body, timeout=medium_s * 1.5 + 10)
        except Exception as e:  # reported below, with the progress made
            result["big_error"] = e
        result["big_s"] = time.monotonic() - t

    with StatusProbe(dev.http) as probe:
        t0 = time.monotonic()
        uploader = threading.Thread(target=big, daemon=True)
        uploader.start()
        time.sleep(3)
        # A second client's upload shares the one medium: its units take turns with the first's.
        t = time.monotonic()
        r2 = put_expect(dev.http, "second.bin", second, timeout=30)
        second_s = time.monotonic() - t
        # The whole upload should take the medium's time; a third more means segments were dropped and resent.
        uploader.join(timeout=max(1.0, medium_s * 1.33 + 5 - (time.monotonic() - t0)))
        done = not uploader.is_alive()
        progress = upload_progress(dev.storage)
    assert r2.status == 201, r2
    assert r2.json()["sha256"] == hashlib.sha256(second).hexdigest()
    assert second_s < medium_s / 4, "the second upload waited %.1f s: it should take turns on the medium" % second_s
    assert done, ("the 1 MiB upload was not done after %.0f s (the medium's limit is %.0f s): %d bytes written, %.1f "
                  "KiB/s of 20: TCP segments were dropped and resent rather than the window closing"
                  % (time.monotonic() - t0, medium_s, progress, progress / 1024 / (time.monotonic() - t0)))
    assert "big_error" not in result, result
    r = result["big"]
    assert r.status == 201, r
    assert r.json()["sha256"] == hashlib.sha256(body).hexdigest() and r.json()["size"] == len(body)
    assert result["big_s"] >= medium_s * 0.95, "faster than the medium: %.1f s" % result["big_s"]
    with open(os.path.join(dev.storage, "big.bin"), "rb") as f:
        assert f.read() == body
    with open(os.path.join(dev.storage, "second.bin"), "rb") as f:
        assert f.read() == second
    # /_status was served all along, promptly: the main loop never waited for the medium.
    assert probe.errors == [], probe.errors[:5]
    assert len(probe.times) >= 200, len(probe.times)
    assert probe.p(0.99) < 0.1, "GET /_status p50 %.1f ms, p99 %.1f ms" % (probe.p(0.5) * 1000, probe.p(0.99) * 1000)
    # The window closed instead: no frame found lwIP without a pbuf, before, during or after.
    assert all(pool_errors(d) == before for d in probe.docs), before
    assert pool_errors(status_doc(dev.http)) == before
    print("status p50 %.1f ms p99 %.1f ms over %d; upload %.1f s (%.1f KiB/s, medium %.0f KiB/s); second %.1f s"
          % (probe.p(0.5) * 1000, probe.p(0.99) * 1000, len(probe.times), result["big_s"],
             len(body) / 1024 / result["big_s"], UNIT / 1024 / (latency / 1000), second_s))


def test_curl_upload_with_expect_gets_100_then_201_on_a_slow_medium(slow, tmp_path):
    latency = 20  # 1 MiB in about 5 s
    dev = slow(latency)
    data = os.urandom(MIB)
    src = tmp_path / "1MiB.bin"
    src.write_bytes(data)
    r = subprocess.run(["curl", "-sS", "-v", "-T", str(src), "-H", "Authorization: " + AUTH,
                        "http://127.0.0.1:%d/files/fw.bin" % dev.http], capture_output=True, text=True, timeout=60)
    assert "< HTTP/1.1 100 Continue" in r.stderr, r.stderr[-2000:]
    assert "< HTTP/1.1 201 Created" in r.stderr, r.stderr[-2000:]
    assert json.loads(r.stdout)["sha256"] == hashlib.sha256(data).hexdigest()
    with open(os.path.join(dev.storage, "fw.bin"), "rb") as f:
        assert f.read() == data
    # A remove waits for the medium too, and answers once it is done.
    t = time.monotonic()
    r = request(dev.http, "DELETE", "/files/fw.bin", None, {"Authorization": AUTH})
    assert r.status == 204 and time.monotonic() - t >= latency / 1000.0 * 0.9
    assert not os.path.exists(os.path.join(dev.storage, "fw.bin"))


def test_https_upload_runs_at_the_medium_pace_on_a_slow_medium(start_device, tmp_path):
    """Over TLS too, the ciphertext that arrives while a write waits is held, not refused: an upload that
    dropped segments would wait for the client's retransmission timer, a second at a time."""
    latency = 50
    dev = start_device("--storage-latency", str(latency), "--set", "token=" + TOKEN, "--capacity", "8M",
                       "--cert", os.path.join(CERTS, "server.crt"), "--key", os.path.join(CERTS, "server.key"))
    data = os.urandom(100 * UNIT)
    src = tmp_path / "400KiB.bin"
    src.write_bytes(data)
    t = time.monotonic()
    r = subprocess.run(["curl", "-sS", "-v", "--cacert", os.path.join(CERTS, "ca.crt"), "-T", str(src),
                        "-H", "Authorization: " + AUTH, "https://127.0.0.1:%d/files/tls.bin" % dev.https],
                       capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t
    assert "< HTTP/1.1 201 Created" in r.stderr, r.stderr[-2000:]
    with open(os.path.join(dev.storage, "tls.bin"), "rb") as f:
        assert f.read() == data
    medium = 100 * latency / 1000.0  # 100 units of 4 KiB, one after the other
    assert took < 2 * medium, (took, medium)
