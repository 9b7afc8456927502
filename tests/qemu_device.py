"""qemu_device.py: runs an mps2-an385 image under qemu-system-arm on free loopback ports, with the interface of conftest.Device."""
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
