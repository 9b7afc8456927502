"""test_board_smoke.py: boots the mps2-an385 image under QEMU and checks upload, download, refusal, echo and /_status."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from qemu_device import ROOT, QemuDevice  # noqa: E402

# The image `make test` builds first (tests/tests.mk): VARIANT=smoke with this token baked in.
TOKEN = "smoke-token"
ELF = os.path.join(ROOT, "build", "mps2-an385", "smoke", "postern.elf")


def build_image():
    """Builds the smoke image when it is missing; skips when this machine cannot."""
    if os.path.exists(ELF):
        return
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is missing: no mps2-an385 image")
    r = subprocess.run(["make", "--no-print-directory", "BOARD=mps2-an385", "VARIANT=smoke",
                        "SET=token=" + TOKEN, "all"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(ELF):
        pytest.skip("cannot build the mps2-an385 image:\n" + r.stdout[-2000:] + r.stderr[-2000:])


@pytest.fixture(scope="module")
def board():
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is missing")
    build_image()
    dev = QemuDevice(ELF)
    yield dev
    dev.stop()


def curl(*args, timeout=120):
    return subprocess.run(["curl", "-sS", "-v", "--max-time", str(timeout)] + list(args),
                          capture_output=True, timeout=timeout + 10)


def test_upload_1mib_with_expect_then_download(board, tmp_path):
    data = os.urandom(1024 * 1024)
    src = tmp_path / "fw.bin"
    src.write_bytes(data)
    mark = board.log_mark()
    started = time.monotonic()
    r = curl("-T", str(src), "-H", "Authorization: Bearer " + TOKEN,
             "http://127.0.0.1:%d/files/fw.bin" % board.http)
    took = time.monotonic() - started
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err
    assert "Expect: 100-continue" in err
    statuses = [l for l in err.splitlines() if l.startswith("< HTTP/1.1")]
    assert statuses[:2] == ["< HTTP/1.1 100 Continue", "< HTTP/1.1 201 Created"], err
    body = json.loads(r.stdout)
    assert body == {"name": "fw.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    board.wait_for_log('"PUT /files/fw.bin HTTP/1.1" 201 1048576', timeout=10, start=mark)
    print("1 MiB upload through QEMU: %.2f s, %.2f MiB/s" % (took, 1 / took))

    got = subprocess.run(["curl", "-sS", "--max-time", "120", "-H", "Authorization: Bearer " + TOKEN,
                          "http://127.0.0.1:%d/files/fw.bin" % board.http], capture_output=True)
    assert got.returncode == 0, got.stderr
    assert got.stdout == data


def test_wrong_token_gets_417_without_100(board, tmp_path):
    src = tmp_path / "fw.bin"
    src.write_bytes(b"\x5a" * (256 * 1024))
    r = curl("-T", str(src), "-H", "Authorization: Bearer wrong",
             "http://127.0.0.1:%d/files/fw.bin" % board.http)
    err = r.stderr.decode(errors="replace")
    assert "< HTTP/1.1 417 Expectation Failed" in err, err
    assert "100 Continue" not in err
    assert json.loads(r.stdout)["error"] == "expectation_failed"


def test_echo_port_echoes(board):
    payload = bytes(range(256)) * 64
    with socket.create_connection(("127.0.0.1", board.echo), timeout=20) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    assert got == payload


def test_status_parses(board):
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "http://127.0.0.1:%d/_status" % board.http],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["storage"]["capacity"] > 1024 * 1024
    lwip = st["memory"]["lwip"]
    assert lwip["pbuf_pool"]["err"] == 0 or lwip["pbuf_pool"]["max"] <= lwip["pbuf_pool"]["avail"]
    lua = st["memory"]["lua"]
    assert 0 < lua["high_water"] <= lua["cap"]
    print("status after the smoke test: Lua arena high water %d of %d; lwIP heap max %d of %d; "
          "pbuf_pool max %d of %d; tcp_seg max %d of %d"
          % (lua["high_water"], lua["cap"], lwip["heap"]["max"], lwip["heap"]["avail"],
             lwip["pbuf_pool"]["max"], lwip["pbuf_pool"]["avail"], lwip["tcp_seg"]["max"],
             lwip["tcp_seg"]["avail"]))
