"""qemu_device.py: runs an mps2-an385 or lm3s6965evb image under qemu-system-arm on free loopback ports, with the interface of conftest.Device."""
import os
import subprocess

from conftest import ROOT, Console

QEMU_RUN = os.path.join(ROOT, "scripts", "qemu-run.sh")


class QemuDevice(Console):
    """One running mps2-an385 image: its forwarded ports and its UART console lines.

    The settings and the policy are baked into the image at build time
    (make BOARD=mps2-an385 SET=... POLICY=...); storage starts empty at each boot.
    Stopping it ends QEMU (this process only, by its PID).
    """

    def __init__(self, elf):
        self.elf = elf
        self._start_on_free_ports(self._start)

    def _start(self):
        cmd = [QEMU_RUN, self.elf, str(self.http), str(self.https), str(self.echo), str(self.discard)]
        self._attach(subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace"))


LM3S_RUN = os.path.join(ROOT, "scripts", "lm3s-run.sh")


class Lm3sDevice(Console):
    """One running lm3s6965evb image with its SD card image (or "none"): forwarded ports and UART console lines.

    The settings and the policy are on the card (scripts/card.py); the card outlives the process,
    so another Lm3sDevice on the same card boots what this one stored. Stopping it ends QEMU (this
    process only, by its PID); stop(signal.SIGKILL) is a power cut.
    """

    def __init__(self, elf, card):
        self.elf = elf
        self.card = card
        self._start_on_free_ports(self._start)

    def _start(self):
        cmd = [LM3S_RUN, self.elf, self.card, str(self.http), str(self.echo), str(self.discard)]
        self._attach(subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace"))


SLIRP_BRIDGE = os.path.join(ROOT, "build", "test", "slirp-bridge")
_bridge_made = []


class QemuDevice6(Console):
    """An mps2-an385 image under qemu-system-arm whose network is tests/slirp_bridge.c rather than QEMU's own
    user networking (whose hostfwd takes IPv4 only): the same layout, forwards on 127.0.0.1 and [::1].

    The console lines are QEMU's and the bridge's. Stopping it ends the bridge, which ends its QEMU."""

    def __init__(self, elf, socket_dir):
        if not _bridge_made:  # make once per run
            r = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "slirp-bridge"],
                               capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, "slirp-bridge did not build:\n" + r.stdout + r.stderr
            _bridge_made.append(True)
        self.elf = elf
        self.sock = os.path.join(socket_dir, "qemu-net.sock")
        self._start_on_free_ports(self._start)

    def _start(self):
        fwds = ["%d:80" % self.http, "%d:443" % self.https, "%d:7" % self.echo, "%d:9" % self.discard]
        qemu = ["qemu-system-arm", "-M", "mps2-an385", "-nographic", "-monitor", "none", "-serial", "stdio",
                "-kernel", self.elf,
                "-netdev", "stream,id=n0,server=off,addr.type=unix,addr.path=" + self.sock,
                "-net", "nic,model=lan9118,netdev=n0"]
        self._attach(subprocess.Popen([SLIRP_BRIDGE, self.sock] + fwds + ["--"] + qemu, cwd=ROOT,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, bufsize=1, errors="replace"))
