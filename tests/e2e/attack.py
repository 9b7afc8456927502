"""attack.py: a legitimate client to run beside an attack, and what it must see.

    with Legit(dev) as legit:
        ... one client attacks the device ...
    legit.assert_served()

While the block runs, one thread uploads a small file on a fresh connection every `period` seconds (over the
device's endpoint under test, HTTPS on the https targets), and another asks GET /_status over plain HTTP every
0.2 s. Both are bounded in count and time and talk to 127.0.0.1 only."""
import json
import os
import threading
import time

from conftest import Endpoint
from httpwire import request


class Attacker:
    """Threads that each run `one(stop)` in a loop, one connection per call, until stopped. A call that ends
    in an error (refused, reset, closed early) is counted and the attacker comes again at once."""

    def __init__(self, one, n=1):
        self.one = one
        self.connections = 0
        self.errors = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(n)]

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.one(self._stop)
            except Exception:  # noqa: BLE001
                self.errors += 1
                self._stop.wait(0.01)
            self.connections += 1

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)
        return False


class Legit:
    def __init__(self, dev, token=None, period=1.0, size=16 * 1024, timeout=10):
        self.dev = dev
        self.token = token if token is not None else dev.token
        self.period = period
        self.size = size
        self.timeout = timeout
        self.uploads = []  # (ok, status or error) per upload
        self.status_times = []  # when each GET /_status was answered
        self.status_failures = 0
        self.extra = {}  # further figures of the attack, for make bench (note())
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._upload_loop, daemon=True),
                         threading.Thread(target=self._status_loop, daemon=True)]

    def __enter__(self):
        self.started = time.monotonic()
        self.status_times.append(self.started)
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 5)
        self.ended = time.monotonic()
        self._record()
        return False

    def note(self, key, value):
        """A further figure of this attack (make bench prints it beside the served ratio)."""
        self.extra[key] = value
        self._record()

    def _record(self):
        # make bench (tests/bench/figures.py) runs the attack tests with POSTERN_ATTACK_FIGURES set.
        path = os.environ.get("POSTERN_ATTACK_FIGURES")
        if not path or not hasattr(self, "ended"):
            return
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
        with open(path, "a") as f:
            f.write(json.dumps({"test": test, "board": self.dev.board, "uploads": len(self.uploads),
                                "served": self.served_ratio, "gap_s": self.longest_status_gap,
                                **self.extra}) + "\n")

    def _upload_loop(self):
        n = 0
        while not self._stop.is_set():
            t0 = time.monotonic()
            body = os.urandom(self.size)
            try:
                r = request(self.dev.web, "PUT", "/files/legit-%d.bin" % (n % 4), body,
                            {"Authorization": "Bearer " + self.token}, timeout=self.timeout)
                self.uploads.append((r.status in (200, 201), r.status))
            except Exception as e:  # noqa: BLE001 -- every failure counts against the device
                self.uploads.append((False, repr(e)))
            n += 1
            self._stop.wait(max(0.0, self.period - (time.monotonic() - t0)))

    def _status_loop(self):
        plain = Endpoint(self.dev.device.http, False)
        while not self._stop.is_set():
            try:
                if request(plain, "GET", "/_status", None, timeout=self.timeout).status == 200:
                    self.status_times.append(time.monotonic())
                else:
                    self.status_failures += 1
            except Exception:  # noqa: BLE001
                self.status_failures += 1
            self._stop.wait(0.2)

    @property
    def served_ratio(self):
        return sum(ok for ok, _ in self.uploads) / max(1, len(self.uploads))

    @property
    def longest_status_gap(self):
        times = self.status_times + [self.ended]
        return max(b - a for a, b in zip(times, times[1:]))

    def assert_served(self, min_ratio=0.95, max_gap=None, min_uploads=3):
        """At least min_ratio of the uploads succeeded, and /_status was never silent for more than max_gap
        seconds (default: 1 s on the host, 5 s on a board behind QEMU)."""
        if max_gap is None:
            max_gap = 1.0 if self.dev.board == "host" else 5.0
        assert len(self.uploads) >= min_uploads, self.uploads
        assert self.served_ratio >= min_ratio, [u for u in self.uploads if not u[0]]
        assert self.longest_status_gap <= max_gap, (self.longest_status_gap, self.status_failures)
