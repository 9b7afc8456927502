"""conftest.py: starts the simulated device on free loopback ports for the end-to-end tests, and always stops it."""
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# POSTERN_HOST_BINARY runs the suite against another build (e.g. one with sanitizers).
HOST_BINARY = os.environ.get("POSTERN_HOST_BINARY") or os.path.join(ROOT, "build", "host", "postern")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Device:
    """One running simulator: its ports, its storage folder and its console lines."""

    def __init__(self, storage, args):
        self.storage = storage
        # A port found free can be taken by some client's ephemeral port before
        # the device binds it: then start again on fresh ports.
        for attempt in range(5):
            self._start(args)
            try:
                self.wait_for_log("postern: ready", timeout=20)
                return
            except AssertionError:
                self.stop()
                if attempt == 4 or not any("Address already in use" in l for l in self.lines):
                    raise

    def _start(self, args):
        self.http = free_port()
        self.https = free_port()
        self.echo = free_port()
        self.discard = free_port()
        self.lines = []
        self.cond = threading.Condition()
        cmd = [HOST_BINARY, "--http", str(self.http), "--https", str(self.https),
               "--echo", str(self.echo), "--discard", str(self.discard),
               "--storage", self.storage] + list(args)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for_log(self, text, timeout=10, start=0):
        """Waits until a console line from index `start` on contains text; returns it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    if text in line:
                        return line
                if self.proc.poll() is not None and not self.reader.is_alive():
                    raise AssertionError("device exited (%s) before logging %r:\n%s"
                                         % (self.proc.returncode, text, "\n".join(self.lines)))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no console line with %r within %ss:\n%s"
                                         % (text, timeout, "\n".join(self.lines[-40:])))
                self.cond.wait(left)

    def log_mark(self):
        with self.cond:
            return len(self.lines)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        return self.proc.returncode


@pytest.fixture
def start_device(tmp_path):
    """Factory: start_device(*args) runs a simulator; every one is stopped after the test."""
    devices = []

    def start(*args, storage=None):
        dev = Device(storage or str(tmp_path / "storage"), args)
        devices.append(dev)
        return dev

    yield start
    for dev in devices:
        dev.stop()
