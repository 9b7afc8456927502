"""test_selftest.py: the network self-test services, echo (port 7) and discard (port 9), through libslirp."""
import socket
import subprocess
import time

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


# ---- Limits: idle timeout, a client that does not read, a flood -------------------------------

def status_doc(dev):
    from httpwire import request
    r = request(dev.web, "GET", "/_status", None, timeout=30)
    assert r.status == 200, r
    return r.json()


def pbufs_used(dev):
    return status_doc(dev)["memory"]["lwip"]["pbuf_pool"]["used"]


def closed_within(sock, seconds):
    """True when the device closes (or resets) sock within seconds; what it sends first is read and dropped."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if sock.recv(65536) == b"":
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


def test_idle_timeout_closes_silent_connections(start_device):
    dev = start_device("--selftest-idle", "2")
    mark = dev.log_mark()
    with socket.create_connection(("127.0.0.1", dev.echo), timeout=10) as e, \
            socket.create_connection(("127.0.0.1", dev.discard), timeout=10) as d, \
            socket.create_connection(("127.0.0.1", dev.echo), timeout=10) as busy:
        t0 = time.monotonic()
        # A connection that keeps talking is not idle, however long it lasts.
        for i in range(8):
            busy.sendall(b"%d" % i)
            assert busy.recv(10) == b"%d" % i
            time.sleep(0.5)
        assert closed_within(e, 6) and closed_within(d, 6)
        assert 1.5 < time.monotonic() - t0 < 8
        busy.sendall(b"still here")
        assert busy.recv(100) == b"still here"
    dev.wait_for_log("echo: connection timed out after 0 bytes", start=mark)
    dev.wait_for_log("discard: connection timed out after 0 bytes", start=mark)


def test_idle_timeout_option_is_checked():
    for bad in ("0", "3601", "-1", "2s", ""):
        r = subprocess.run([HOST_BINARY, "--selftest-idle", bad], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "--selftest-idle" in r.stderr, (bad, r.stderr)


def _stuff_echo_without_reading(dev):
    """Connects to the echo, never reads, and sends until the device stops taking bytes. Returns the socket."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the echo's output backs up sooner
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    s.connect(("127.0.0.1", dev.echo))
    s.settimeout(3)  # a send blocked this long: the device took nothing more
    block = b"x" * 65536
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        try:
            s.send(block)
        except (socket.timeout, ConnectionResetError, BrokenPipeError):  # a short idle time closes it first
            break
    else:
        raise AssertionError("the echo took bytes for 40 s from a client that never reads")
    return s


def test_echo_client_that_never_reads_holds_a_bounded_number_of_pbufs(launch):
    # (Through slirp the device sees full segments once the paths back up; the bound for a peer that
    # sends small ones is in tests/unit/test_selftest.c.)
    dev = launch()
    base = pbufs_used(dev)
    s = _stuff_echo_without_reading(dev)
    try:
        time.sleep(1)
        for _ in range(3):  # HTTP is served meanwhile, and the echo's share of the pool stays small
            held = pbufs_used(dev) - base
            assert held <= 3, held  # two pbufs waiting to be echoed, one lwIP keeps refused
    finally:
        s.close()
    # The echo still holds its share until it has echoed it or its idle time runs out; HTTP goes on.
    for _ in range(5):
        assert pbufs_used(dev) - base <= 3
        time.sleep(0.3)


def test_echo_client_that_never_reads_is_closed_after_the_idle_time(start_device):
    from httpwire import request

    def used():
        return request(dev.http, "GET", "/_status", None, timeout=10).json()["memory"]["lwip"]["pbuf_pool"]["used"]

    dev = start_device("--selftest-idle", "2")
    base = used()
    mark = dev.log_mark()
    s = _stuff_echo_without_reading(dev)
    s.close()  # unread echo data: the kernel resets; slirp still has bytes for the device
    dev.wait_for_log("echo: connection timed out", start=mark, timeout=10)
    deadline = time.monotonic() + 5
    while used() != base and time.monotonic() < deadline:
        time.sleep(0.2)
    assert used() == base


def test_discard_flood_beyond_the_bound_leaves_http_served(launch):
    dev = launch()
    mark = dev.log_mark()
    flood = []
    try:
        for _ in range(24):
            flood.append(socket.create_connection(("127.0.0.1", dev.discard), timeout=10))
        dev.wait_for_log("discard: refused, all ", start=mark)
        time.sleep(1)
        # Those beyond the bound are closed at once (some wait for a pcb, and slirp retries their SYN).
        assert any(closed_within(s, 0.2) for s in flood)
        # Every HTTP slot at once, while the flood holds its pcbs: none is refused for want of a pcb.
        from httpwire import Conn
        conns = [Conn(dev.web, timeout=20) for _ in range(4)]
        try:
            for c in conns:
                c.send(b"GET /_status HTTP/1.1\r\nHost: d\r\n\r\n")
            for c in conns:
                assert c.read_response().status == 200
        finally:
            for c in conns:
                c.close()
    finally:
        for s in flood:
            s.close()
    assert status_doc(dev)["connections"]["active"] == 1
    # Once the flood is gone, the discard takes new connections again.
    deadline = time.monotonic() + 30
    mark = dev.log_mark()
    while True:
        with socket.create_connection(("127.0.0.1", dev.discard), timeout=10) as s:
            try:
                s.sendall(b"z" * 1000)
                s.shutdown(socket.SHUT_WR)
                s.recv(1)
            except ConnectionResetError:
                pass
        try:
            dev.wait_for_log("discard: connection closed after 1000 bytes", start=mark, timeout=2)
            break
        except AssertionError:
            assert time.monotonic() < deadline
