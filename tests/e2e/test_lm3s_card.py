"""test_lm3s_card.py: what only the lm3s6965evb shows: files on its SD card outlive QEMU, a power cut in the middle
of a replacement, settings and a policy written by the card tool, and cards that are missing, too small or full."""
import hashlib
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import LM3S_ELF, ROOT, make_card, wait_until
from httpwire import Conn, request

TARGETS = ("lm3s",)
TOKEN = "card-token"
AUTH = {"Authorization": "Bearer " + TOKEN}


@pytest.fixture
def boot(target):
    """Factory: boot(card, elf=LM3S_ELF) runs the firmware on a card image; every device is stopped after the test."""
    from qemu_device import Lm3sDevice
    started = []

    def start(card, elf=LM3S_ELF):
        dev = Lm3sDevice(elf, card)
        started.append(dev)
        return dev

    yield start
    for dev in started:
        dev.stop()


def web(dev):
    from conftest import Endpoint
    return Endpoint(dev.http, False)


def put(dev, name, data, auth=AUTH):
    return request(web(dev), "PUT", "/files/" + name, data, dict(auth, **{"Content-Length": str(len(data))}),
                   timeout=60)


def listing(dev, auth=AUTH):
    r = request(web(dev), "GET", "/files/", None, auth, timeout=30)
    assert r.status == 200, r
    return {f["name"]: f["size"] for f in r.json()["files"]}


def status(dev):
    r = request(web(dev), "GET", "/_status", None, None, timeout=30)
    assert r.status == 200, r
    return r.json()["storage"]


def cluster_bytes(dev):
    line = dev.wait_for_log("clusters of", 10)
    return int(re.search(r"clusters of (\d+) bytes", line).group(1))


def used(sizes, cluster):
    return sum((s + cluster - 1) // cluster * cluster for s in sizes)


def test_files_settings_and_policy_outlive_the_device(boot, tmp_path):
    card = make_card(str(tmp_path / "card.img"), 64 << 20, {"token": TOKEN})
    data = os.urandom(300 * 1024)
    dev = boot(card)
    dev.wait_for_log("postern: 1 settings from the card")
    r = put(dev, "fw.bin", data)
    assert r.status == 201, r
    dev.stop()
    dev = boot(card)
    assert listing(dev) == {"fw.bin": len(data)}
    r = request(web(dev), "GET", "/files/fw.bin", None, AUTH, timeout=60)
    assert r.status == 200 and hashlib.sha256(r.body).digest() == hashlib.sha256(data).digest()
    dev.stop()

    # Another token and a stricter policy, written by the card tool; the files stay.
    policy = tmp_path / "strict.lua"
    text = open(os.path.join(ROOT, "scripts", "policy.lua")).read()
    rule = '  if req.name == "blocked.bin" then\n    return refuse(req, 403, "blocked by the card policy")\n  end\n'
    text = text.replace("  local length = req.length\n", rule + "  local length = req.length\n", 1)
    policy.write_text(text)
    make_card(card, settings={"token": "second"}, policy=str(policy), reset=False)
    dev = boot(card)
    dev.wait_for_log("running the stored policy card:strict.lua")
    new_auth = {"Authorization": "Bearer second"}
    assert request(web(dev), "GET", "/files/", None, AUTH, timeout=30).status == 403
    assert listing(dev, new_auth) == {"fw.bin": len(data)}
    r = put(dev, "blocked.bin", b"x" * 10, new_auth)
    assert r.status == 403 and b"blocked by the card policy" in r.body
    assert put(dev, "ok.bin", b"y" * 10, new_auth).status == 201
    dev.stop()

    # A policy that does not load: the baked one runs, and the console says so.
    policy.write_text("this is not lua(")
    make_card(card, policy=str(policy), reset=False)
    dev = boot(card)
    dev.wait_for_log("did not load")
    dev.wait_for_log("running the built-in policy policy.lua")
    assert put(dev, "blocked.bin", b"x" * 10, new_auth).status == 201


def send_partial_and_cut(dev, name, data, sent, after_response, delay=0.4):
    """Sends the head and `sent` bytes of a PUT, then kills QEMU (a power cut) `delay` seconds later, or once the
    answer came; returns the status seen, if any."""
    c = Conn(web(dev), timeout=60)
    c.send(("PUT /files/%s HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
            % (name, TOKEN, len(data))).encode() + data[:sent])
    seen = None
    if after_response:
        seen = c.read_response().status
    else:
        time.sleep(delay)  # the device takes what arrived and writes it to the card meanwhile
    dev.stop(signal.SIGKILL)
    c.close()
    return seen


def test_power_cut_while_replacing(boot, tmp_path):
    v1 = os.urandom(100 * 1024)
    v2 = os.urandom(400 * 1024)
    digests = {hashlib.sha256(v1).digest(): "v1", hashlib.sha256(v2).digest(): "v2"}
    # How long a whole v2 takes: the client's socket takes the body long before the device has stored it.
    card = make_card(str(tmp_path / "timing.img"), 4 << 20, {"token": TOKEN})
    dev = boot(card)
    t0 = time.monotonic()
    assert put(dev, "fw.bin", v2).status == 201
    took = time.monotonic() - t0
    dev.stop()
    # Ten points: six spread over the body (0.4 s for what was sent to reach the card); all of it sent and
    # the cut at 60, 90 and 105 % of that time (the last sectors, the commit record and the zeroing of the
    # old one race it); after the 201.
    points = [(int(len(v2) * f), 0.4) for f in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9)]
    points += [(len(v2), 0.6 * took), (len(v2), 0.9 * took), (len(v2), 1.05 * took), (len(v2), None)]
    outcomes = []
    for i, (sent, delay) in enumerate(points):
        card = make_card(str(tmp_path / ("card%d.img" % i)), 4 << 20, {"token": TOKEN})
        dev = boot(card)
        assert put(dev, "fw.bin", v1).status == 201
        assert put(dev, "other.bin", b"o" * 5000).status == 201
        seen = send_partial_and_cut(dev, "fw.bin", v2, sent, after_response=delay is None, delay=delay or 0)
        dev = boot(card)
        cluster = cluster_bytes(dev)
        files = listing(dev)
        assert set(files) == {"fw.bin", "other.bin"}, (sent, files)
        r = request(web(dev), "GET", "/files/fw.bin", None, AUTH, timeout=60)
        assert r.status == 200
        version = digests.get(hashlib.sha256(r.body).digest())
        assert version is not None, "point %d: fw.bin is neither v1 nor v2 (%d bytes)" % (i, len(r.body))
        if seen == 201:
            assert version == "v2", "point %d: committed, yet v1 after the cut" % i
        if sent < len(v2):
            assert version == "v1", "point %d: v2 visible before all of it arrived" % i
        st = status(dev)
        assert st["free"] == st["capacity"] - used(files.values(), cluster), (i, st, files)
        outcomes.append(version)
        dev.stop()
    print("power cut outcomes (a whole upload %.2f s):" % took, outcomes)
    assert outcomes[:6] == ["v1"] * 6 and outcomes[-1] == "v2", outcomes


@pytest.fixture
def baked_token_image():
    """An image whose baked settings hold the token: the fallback when the card has none (or there is no card)."""
    r = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "BOARD=lm3s6965evb", "VARIANT=cardtest",
                        "BAKED_SET=token=" + TOKEN], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return os.path.join(ROOT, "build", "lm3s6965evb", "cardtest", "postern.elf")


def test_no_card(boot, baked_token_image):
    dev = boot("none", elf=baked_token_image)
    dev.wait_for_log("storage: no SD card: nothing is stored")
    dev.wait_for_log("no settings on the card: the 1 baked ones")
    assert status(dev) == {"capacity": 0, "free": 0}
    assert listing(dev) == {}
    # No storage at all: 507 with a known length (the default policy) and chunked (the core).
    assert put(dev, "a.bin", b"x" * 1000).status == 507
    c = Conn(web(dev), timeout=30)
    c.send(("PUT /files/b.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n0\r\n\r\n" % TOKEN).encode())
    assert c.read_response().status == 507
    c.close()


def test_card_too_small(boot, tmp_path):
    card = make_card(str(tmp_path / "small.img"), 256 << 10, {"token": TOKEN})
    dev = boot(card)
    dev.wait_for_log("the SD card is too small (256 KiB, at least 512 KiB)")
    dev.wait_for_log("postern: 1 settings from the card")  # the card's settings still count
    assert listing(dev) == {}
    assert put(dev, "a.bin", b"x" * 1000).status == 507
    c = Conn(web(dev), timeout=30)
    c.send(("PUT /files/b.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n0\r\n\r\n" % TOKEN).encode())
    assert c.read_response().status == 507
    c.close()


def test_card_full(boot, tmp_path):
    card = make_card(str(tmp_path / "full.img"), 512 << 10, {"token": TOKEN})
    dev = boot(card)
    free = status(dev)["free"]
    data = os.urandom(free)
    assert put(dev, "all.bin", data).status == 201
    assert status(dev)["free"] == 0
    assert put(dev, "more.bin", b"x" * 100).status == 507
    dev.stop()
    dev = boot(card)
    dev.wait_for_log("the SD card is full")
    assert put(dev, "more.bin", b"x" * 100).status == 507
    r = request(web(dev), "GET", "/files/all.bin", None, AUTH, timeout=60)
    assert r.status == 200 and r.body == data  # it still serves what it holds
    assert request(web(dev), "DELETE", "/files/all.bin", None, AUTH, timeout=30).status in (200, 204)
    assert put(dev, "more.bin", b"x" * 100).status == 201
