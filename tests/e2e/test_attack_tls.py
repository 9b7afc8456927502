"""test_attack_tls.py: one hostile TLS client beside a legitimate one: the TLS sessions and the pbuf pool stay
shared. Each attack is bounded (a couple of connections, about 15 s) and talks to 127.0.0.1 only.

  held handshakes   every session taken by handshakes that never finish, reopened the moment they are closed
  one-byte records  a request head dripped as one TLS record per byte, connection after connection
"""
import contextlib
import os
import socket
import ssl
import struct
import threading
import time

import pytest

from attack import Attacker, Legit
from conftest import CA_CERT, Endpoint
from httpwire import request

TARGETS = ("host-https", "mps2-https")
TOKEN = "att4ck-T"
ATTACK_S = 15


def status_doc(dev):
    r = request(Endpoint(dev.device.http, False), "GET", "/_status", None, timeout=10)
    assert r.status == 200, r
    return r.json()


def client_hello():
    """A TLS 1.2 ClientHello for ECDHE-ECDSA-AES128-GCM-SHA256 on P-256: the device answers it and then waits
    for the client's key exchange, which never comes."""
    ext = struct.pack(">HHH", 10, 4, 2) + struct.pack(">H", 23)        # supported_groups: P-256
    ext += struct.pack(">HHB", 11, 2, 1) + b"\x00"                      # ec_point_formats
    ext += struct.pack(">HHH", 13, 4, 2) + struct.pack(">H", 0x0403)    # signature_algorithms
    cs = struct.pack(">H", 0xC02B)
    hello = b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack(">H", len(cs)) + cs + b"\x01\x00"
    hello += struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(hello))[1:] + hello
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def hold_handshake(port, partial):
    """One connection that starts a handshake and stalls: half a ClientHello, or a whole one and then nothing.
    Returns when the device closes it (the attacker reconnects at once)."""
    def one(stop):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            hello = client_hello()
            s.sendall(hello[:len(hello) // 2] if partial else hello)
            s.settimeout(0.2)
            while not stop.is_set():
                try:
                    if not s.recv(4096):
                        return
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    return
    return one


@pytest.mark.targets("host-https", "mps2-https", why="TLS sessions")
def test_held_handshakes_yield_to_a_legitimate_client(launch):
    dev = launch({"token": TOKEN})
    sessions = status_doc(dev)["tls"]["max"]
    mark = dev.log_mark()
    # One stalled handshake per session (2 on the host, 1 on a board): half of them send a partial hello.
    attackers = [Attacker(hold_handshake(dev.web.port, partial=(i % 2 == 0)), 1) for i in range(sessions)]
    with contextlib.ExitStack() as stack:
        for a in attackers:
            stack.enter_context(a)
        time.sleep(1)  # every session is held before the legitimate client comes
        with Legit(dev) as legit:
            time.sleep(ATTACK_S - 1)
    print("uploads", legit.uploads, "attacker connections", [a.connections for a in attackers],
          "status gap", legit.longest_status_gap, "tls", status_doc(dev)["tls"])
    legit.assert_served()
    # The stalled handshakes gave their sessions up, and said so.
    dev.wait_for_log("its session goes to a new connection", start=mark, timeout=1)


def drip_request(port, delay, counts):
    """One connection: a TLS handshake, then a GET /_status head sent one byte per TLS record (TCP_NODELAY: one
    segment each), then the answer, then the close."""
    ctx = ssl.create_default_context(cafile=CA_CERT)
    head = (b"GET /_status HTTP/1.1\r\nHost: device\r\nUser-Agent: drip-drip-drip-drip-drip\r\n"
            b"Accept: */*\r\nX-Filler: " + b"x" * 40 + b"\r\n\r\n")

    def one(stop):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            for i in range(len(head)):
                if stop.is_set():
                    return
                s.send(head[i:i + 1])  # one write on an SSLSocket is one record
                time.sleep(delay)
            got = b""
            while b"\r\n\r\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    raise EOFError("closed before the answer")
                got += chunk
            assert got.startswith(b"HTTP/1.1 200"), got[:100]
            counts["answered"] += 1
    return one


@pytest.mark.targets("host-https", "mps2-https", why="TLS records")
def test_one_byte_records_hold_a_bounded_number_of_pool_pbufs(launch):
    dev = launch({"token": TOKEN})
    before = status_doc(dev)["memory"]["lwip"]["pbuf_pool"]
    counts = {"answered": 0}
    samples = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                samples.append(status_doc(dev)["memory"]["lwip"]["pbuf_pool"]["used"])
            except Exception:  # noqa: BLE001 -- Legit reports a silent /_status
                pass
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    # Phase 1, the attacker alone: what one such connection costs.
    with Attacker(drip_request(dev.web.port, 0.002, counts), 1) as attacker:
        sampler.start()
        time.sleep(5)
        alone = status_doc(dev)["memory"]["lwip"]["pbuf_pool"]
        # Phase 2, beside a legitimate client.
        with Legit(dev) as legit:
            time.sleep(ATTACK_S - 5)
    done.set()
    sampler.join(timeout=5)
    after = status_doc(dev)["memory"]["lwip"]["pbuf_pool"]
    print("pbuf_pool before", before, "attacker alone", alone, "after", after, "sampled used max",
          max(samples or [0]), "answered", counts["answered"], "attacker connections", attacker.connections,
          "errors", attacker.errors, "uploads", legit.uploads)
    # One dripping connection and the /_status that measures it: the plaintext staged and handed up
    # (POSTERN_TLS_PLAIN_PBUFS, 3) and the ciphertext queued (POSTERN_TLS_RX_PBUFS, 2) at most, which in
    # practice is 2 or 3 pool pbufs; the 1-byte records never cost one pbuf each.
    assert alone["max"] <= max(before["max"], before["used"] + 5), (before, alone)
    assert alone["err"] == before["err"], (before, alone)  # the pool never ran dry
    assert after["err"] == before["err"], (before, after)
    assert counts["answered"] >= 3, counts  # the attack ran: its dripped requests were served
    legit.assert_served()
