"""conftest.py: starts devices for the end-to-end tests on free loopback ports, and always stops them.

One suite serves every target. A target is a board and a scheme:

  host        the simulator (build/host/postern), plain HTTP
  host-https  the simulator over TLS (certificates from `make certs`)
  mps2        the mps2-an385 firmware in qemu-system-arm, plain HTTP
  mps2-https  the same firmware over TLS
  mps2-nor    the firmware on a flash with SPI NOR timing (FLASH_TIMING=nor), plain HTTP
  mps2-slow   the firmware on a flash with 1 s erases (FLASH_TIMING=slow), plain HTTP
  host-rtos   the simulator in RTOS mode (make NO_SYS=0: build/host-nosys0/postern), plain HTTP
  lm3s        the lm3s6965evb firmware in qemu-system-arm, plain HTTP (no TLS on that board), its
              settings and policy on an SD card image made for the test (scripts/card.py)

A test that takes the `dev` or `launch` fixture runs once per target its
module lists in TARGETS (the first four by default; the flash timings only
where a module names them: the upload and storage scenarios; host-rtos too, on
the upload, decision, hostile-client, client and storage-timing scenarios).
lm3s only where a module names it (the upload, decision and hostile-client scenarios, and the
board's own card tests). host-rtos is the host target on another build, so a scenario's marker that
names "host" covers it too. A scenario that cannot run
on a target says so with @pytest.mark.targets("host", ..., why="...") and is
reported as skipped there, with the reason. POSTERN_TARGETS=host,mps2 limits
a run to some targets.
"""
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# POSTERN_HOST_BINARY runs the suite against another build (e.g. one with sanitizers).
HOST_BINARY = os.environ.get("POSTERN_HOST_BINARY") or os.path.join(ROOT, "build", "host", "postern")
# POSTERN_RTOS_BINARY: the same for the host-rtos target (e.g. make e2e-tsan's).
RTOS_BINARY = os.environ.get("POSTERN_RTOS_BINARY") or os.path.join(ROOT, "build", "host-nosys0", "postern")
CERTS = os.path.join(ROOT, "build", "certs")
CA_CERT = os.path.join(CERTS, "ca.crt")
DEFAULT_TARGETS = ("host", "host-https", "mps2", "mps2-https")
FLASH_TARGETS = {"mps2-nor": "nor", "mps2-slow": "slow"}  # target: the image's FLASH_TIMING
ALL_TARGETS = DEFAULT_TARGETS + tuple(FLASH_TARGETS) + ("host-rtos", "lm3s")
LM3S_ELF = os.path.join(ROOT, "build", "lm3s6965evb", "default", "postern.elf")
CARD_TOOL = os.path.join(ROOT, "scripts", "card.py")
# Targets that are another target on another build: markers naming the latter cover them.
SAME_AS = {"host-rtos": "host"}


def wait_until(pred, timeout, step=0.05):
    """Polls pred until it holds or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Console:
    """The console lines of a device process, read by a thread as they come."""

    def _attach(self, proc):
        self.proc = proc
        self.lines = []
        self.cond = threading.Condition()
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

    def _start_on_free_ports(self, start):
        # A port found free can be taken by some client's ephemeral port before
        # the device binds it: then start again on fresh ports.
        for attempt in range(5):
            self.http, self.https, self.echo, self.discard = (free_port() for _ in range(4))
            start()
            try:
                self.wait_for_log("postern: ready", timeout=getattr(self, "ready_timeout", 30))
                return
            except AssertionError:
                self.stop()
                if attempt == 4 or not any("Address already in use" in l or "Could not set up host forwarding" in l
                                           for l in self.lines):
                    raise

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


class Device(Console):
    """One running simulator: its ports, its storage folder and its console lines."""

    def __init__(self, storage, args, wrapper=(), binary=HOST_BINARY):
        """wrapper: a command the simulator runs under (valgrind, for the figures); binary: another build of it."""
        self.storage = storage
        self._start_on_free_ports(lambda: self._start(list(wrapper) + [binary], args))

    def _start(self, prefix, args):
        cmd = prefix + ["--http", str(self.http), "--https", str(self.https),
               "--echo", str(self.echo), "--discard", str(self.discard),
               "--storage", self.storage] + list(args)
        self._attach(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, bufsize=1))


@pytest.fixture
def start_device(request, tmp_path):
    """Factory: start_device(*args) runs a simulator (the RTOS build in a test on host-rtos); every one is stopped after the test."""
    devices = []
    callspec = getattr(request.node, "callspec", None)
    binary = RTOS_BINARY if callspec is not None and callspec.params.get("target") == "host-rtos" else HOST_BINARY

    def start(*args, storage=None):
        dev = Device(storage or str(tmp_path / "storage"), args, binary=binary)
        devices.append(dev)
        return dev

    yield start
    for dev in devices:
        dev.stop()


# ---- Targets --------------------------------------------------------------------------------

class Endpoint:
    """Where a test's requests go: a loopback port, plain or TLS."""

    def __init__(self, port, tls):
        self.port = port
        self.tls = tls

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def curl_args(self):
        return ["--cacert", CA_CERT] if self.tls else []

    def connect(self, timeout):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        if not self.tls:
            return sock
        ctx = ssl.create_default_context(cafile=CA_CERT)
        return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


class Dut:
    """A device under test on some target, with one way to reach it and read its storage."""

    def __init__(self, target, device, token):
        self.target = target
        self.board, _, scheme = target.partition("-")
        self.flash = FLASH_TARGETS.get(target, "instant" if self.board == "mps2" else None)
        self.card = getattr(device, "card", None)  # the SD card image on lm3s
        self.device = device
        self.token = token
        self.web = Endpoint(device.https if scheme == "https" else device.http, scheme == "https")
        self.echo = device.echo
        self.discard = device.discard
        self.storage = getattr(device, "storage", None)  # a folder on the host board only

    @property
    def lines(self):
        return self.device.lines

    def wait_for_log(self, text, timeout=10, start=0):
        return self.device.wait_for_log(text, timeout, start)

    def log_mark(self):
        return self.device.log_mark()

    def stop(self, sig=signal.SIGTERM):
        return self.device.stop(sig)

    def _get(self, path):
        # Over plain HTTP: a board has one TLS session, which the scenario's own connection may hold.
        from httpwire import request
        headers = {"Authorization": "Bearer " + self.token} if self.token else None
        return request(Endpoint(self.device.http, False), "GET", path, None, headers, timeout=30)

    def read_file(self, name):
        """The committed bytes of a file, or None. The host reads its folder; a board is asked over HTTP."""
        if self.storage is not None:
            path = os.path.join(self.storage, name)
            return open(path, "rb").read() if os.path.exists(path) else None
        r = self._get("/files/" + name)
        assert r.status in (200, 404), r
        return r.body if r.status == 200 else None

    def files(self):
        """Names of the committed files, sorted."""
        if self.storage is not None:
            return sorted(n for n in os.listdir(self.storage) if not n.startswith("."))
        r = self._get("/files/")
        assert r.status == 200, r
        return sorted(f["name"] for f in r.json()["files"])


def _enabled_targets():
    wanted = os.environ.get("POSTERN_TARGETS")
    return [t for t in ALL_TARGETS if not wanted or t in wanted.split(",")]


def pytest_configure(config):
    config.addinivalue_line("markers", "targets(*names, why): the targets a scenario can run on, and why not the rest")


def pytest_generate_tests(metafunc):
    if "target" not in metafunc.fixturenames:
        return
    module_targets = getattr(metafunc.module, "TARGETS", DEFAULT_TARGETS)
    marker = metafunc.definition.get_closest_marker("targets")
    params = []
    for t in _enabled_targets():
        if t not in module_targets:
            continue
        if marker is not None and t not in marker.args and SAME_AS.get(t) not in marker.args:
            params.append(pytest.param(t, marks=pytest.mark.skip(reason=marker.kwargs["why"])))
        else:
            params.append(t)
    metafunc.parametrize("target", params)


_images_made = set()


def card_size_for(capacity):
    """The SD card image size (a power of two) whose data clusters hold at least `capacity` (e.g. "3M")."""
    n = int(capacity[:-1]) * {"K": 1 << 10, "M": 1 << 20}[capacity[-1].upper()] if capacity[-1].isalpha() else int(capacity)
    size = 512 << 10  # the smallest card the board takes
    while size - 256 * 512 < n:
        size *= 2
    return size


def make_card(path, size=64 << 20, settings=None, policy=None, reset=True):
    """Creates (or resets) an lm3s6965evb card image at path and writes settings and a policy onto it."""
    cmd = [CARD_TOOL, path, "--create", str(size)] + (["--reset"] if reset else [])
    if settings is not None:
        cmd += ["--set", " ".join("%s=%s" % kv for kv in sorted(settings.items()))]
    if policy:
        cmd += ["--policy", policy]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return path


def _board_image(settings, policy):
    """Builds (or reuses) an mps2-an385 image with these settings and policy baked in; returns the ELF."""
    policy = policy or os.path.join(ROOT, "scripts", "policy.lua")
    key = json.dumps([sorted(settings.items()), open(policy, "rb").read().decode("latin-1")])
    variant = "t" + hashlib.sha256(key.encode()).hexdigest()[:12]
    elf = os.path.join(ROOT, "build", "mps2-an385", variant, "postern.elf")
    if variant not in _images_made:  # make once per run: it relinks what changed, and only that
        set_arg = " ".join("%s=%s" % kv for kv in sorted(settings.items()))
        r = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "BOARD=mps2-an385", "VARIANT=" + variant,
                            "SET=" + set_arg, "POLICY=" + os.path.abspath(policy)],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, "board image did not build:\n" + r.stdout[-3000:] + r.stderr[-3000:]
        _images_made.add(variant)
    return elf


@pytest.fixture
def launch(target, tmp_path):
    """Factory: launch(settings={...}, policy=path, storage=folder) starts a device on the test's target.

    settings are what the policy sees as config.NAME (capacity= sizes the storage); the host
    takes them as options, a board has them baked into its image."""
    started = []

    def start(settings=None, policy=None, storage=None):
        settings = dict(settings or {})
        board, _, scheme = target.partition("-")
        if board == "host":
            args = []
            capacity = settings.pop("capacity", None)
            if capacity:
                args += ["--capacity", capacity]
            for kv in settings.items():
                args += ["--set", "%s=%s" % kv]
            if policy:
                args += ["--policy", policy]
            if scheme == "https":
                args += ["--cert", os.path.join(CERTS, "server.crt"), "--key", os.path.join(CERTS, "server.key")]
            device = Device(storage or str(tmp_path / "storage"), args,
                            binary=RTOS_BINARY if target == "host-rtos" else HOST_BINARY)
        elif board == "lm3s":
            from qemu_device import Lm3sDevice
            capacity = settings.pop("capacity", None)
            card = make_card(str(tmp_path / "card.img"), card_size_for(capacity) if capacity else 64 << 20,
                             settings, policy)
            device = Lm3sDevice(LM3S_ELF, card)
        else:
            from qemu_device import QemuDevice
            if target in FLASH_TARGETS:
                settings["flash_timing"] = FLASH_TARGETS[target]  # baked like a setting (bake.sh)
            device = QemuDevice(_board_image(settings, policy))
        started.append(device)
        return Dut(target, device, (settings or {}).get("token"))

    yield start
    for device in started:
        device.stop()
