"""upload_vs_discard.py: prints host-simulator throughput of a 64 MiB PUT with Expect (policy + storage) against the raw discard sink, same run."""
import os
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from conftest import Device  # noqa: E402
from httpwire import Conn  # noqa: E402

SIZE = 64 * 1024 * 1024
BLOCK = b"\x5a" * 65536
RUNS = 3


def discard(dev):
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", dev.discard), timeout=60) as s:
        for _ in range(SIZE // len(BLOCK)):
            s.sendall(BLOCK)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
    return time.monotonic() - t


def upload(dev, i):
    t = time.monotonic()
    c = Conn(dev.http, timeout=60)
    c.send(("PUT /files/bench%d.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer B\r\nContent-Length: %d\r\n"
            "Expect: 100-continue\r\n\r\n" % (i, SIZE)).encode())
    assert c.read_response().status == 100
    for _ in range(SIZE // len(BLOCK)):
        c.send(BLOCK)
    r = c.read_response(timeout=60)
    assert r.status in (200, 201), r
    c.close()
    return time.monotonic() - t


def main():
    with tempfile.TemporaryDirectory() as tmp:
        dev = Device(os.path.join(tmp, "storage"), ["--set", "token=B", "--capacity", "512M"])
        try:
            d = statistics.median(discard(dev) for _ in range(RUNS))
            u = statistics.median(upload(dev, i % 2) for i in range(RUNS))
        finally:
            dev.stop()
    mib = SIZE / (1024 * 1024)
    print("64 MiB, median of %d runs, host simulator (libslirp):" % RUNS)
    print("  discard sink (port 9)        %7.1f MiB/s" % (mib / d))
    print("  PUT + Expect + policy + disk %7.1f MiB/s" % (mib / u))
    print("  upload / discard             %7.2f" % (d / u))


if __name__ == "__main__":
    main()
