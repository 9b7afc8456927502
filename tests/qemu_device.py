"""qemu_device.py: runs an mps2-an385 image under qemu-system-arm on free loopback ports, with the interface of conftest.Device."""
import os
import signal
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU_RUN = os.path.join(ROOT, "scripts", "qemu-run.sh")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QemuDevice:
    """One running mps2-an385 image: its forwarded ports and its UART console lines.

    The settings and the policy are baked into the image at build time
    (make BOARD=mps2-an385 SET=... POLICY=...); storage starts empty at each boot.
    """

    def __init__(self, elf, ready_timeout=30):
        self.elf = elf
        # A port found free can be taken before QEMU binds it: then start again on fresh ports.
        for attempt in range(5):
            self._start()
            try:
                self.wait_for_log("postern: ready", timeout=ready_timeout)
                return
            except AssertionError:
                self.stop()
                in_use = any("host forwarding rule" in l or "Address already in use" in l for l in self.lines)
                if attempt == 4 or not in_use:
                    raise

    def _start(self):
        self.http = free_port()
        self.https = free_port()
        self.echo = free_port()
        self.discard = free_port()
        self.lines = []
        self.cond = threading.Condition()
        cmd = [QEMU_RUN, self.elf, str(self.http), str(self.https), str(self.echo), str(self.discard)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\r\n"))
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
                    raise AssertionError("QEMU exited (%s) before the device logged %r:\n%s"
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
        """Stops QEMU (this process only, by its PID) and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        return self.proc.returncode
