"""test_selftest.py: the network self-test services, echo (port 7) and discard (port 9), through libslirp."""
import socket
import subprocess

import pytest

from conftest import HOST_BINARY

TARGETS = ("host", "mps2")  # echo and discard are plain TCP


def test_echo_returns_bytes(launch):
    dev = launch()
    with socket.create_connection(("127.0.0.1", dev.echo), timeout=10) as s:
        s.sendall(b"hello")
        assert s.recv(100) == b"hello"


def test_echo_large_stream_is_identical(launch):
    dev = launch()
    data = bytes(range(256)) * 4096  # 1 MiB, more than any window or buffer
    got = bytearray()
    with socket.create_connection(("127.0.0.1", dev.echo), timeout=20) as s:
        s.setblocking(True)
        sent = 0
        while sent < len(data) or len(got) < len(data):
            if sent < len(data):
                sent += s.send(data[sent:sent + 65536])
            s.settimeout(0.01 if sent < len(data) else 10)
            try:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            except socket.timeout:
                pass
    assert bytes(got) == data


def test_discard_swallows_64_mib_and_reports_the_count(launch):
    dev = launch()
    mark = dev.log_mark()
    block = b"\xa5" * 65536
    with socket.create_connection(("127.0.0.1", dev.discard), timeout=30) as s:
        for _ in range(1024):
            s.sendall(block)
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b""  # the device closes after the peer's FIN
    line = dev.wait_for_log("discard: connection closed", start=mark)
    assert "after 67108864 bytes" in line


@pytest.mark.targets("host", why="the firmware has no signals; QEMU is simply ended")
def test_sigterm_stops_cleanly(launch):
    dev = launch()
    assert dev.stop() == 0
    assert any("postern: stopped" in l for l in dev.lines)


def test_bad_options_exit_2_with_one_line():
    for args in (["--http", "70000"], ["--bogus"], ["--capacity", "12Q"], ["--set", "novalue"],
                 ["--policy", "/nonexistent.lua"], ["--cert", "/nonexistent.pem"], ["--http"]):
        r = subprocess.run([HOST_BINARY] + args, capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, args
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("postern: "), (args, r.stderr)


def test_help_lists_every_option():
    r = subprocess.run([HOST_BINARY, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    for opt in ("--http", "--https", "--policy", "--storage", "--capacity", "--set", "--cert",
                "--key", "--client-ca"):
        assert opt in r.stdout
