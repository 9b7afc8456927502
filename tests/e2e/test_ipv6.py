"""test_ipv6.py: every target over IPv6: uploads (100 then 201), refusals (417) and downloads through [::1],
the IPv6 peer in the access log and in the policy's req.peer, both families at once, and --ipv6 off.

The simulator forwards [::1]:PORT beside 127.0.0.1:PORT to the device's SLAAC address (fec0::/64 from
libslirp's router advertisement); the device sees the forwarded connections come from the router, fec0::2.
QEMU 7.2's own hostfwd takes IPv4 addresses only, so here a board's network is tests/slirp_bridge.c instead:
libslirp laid out as QEMU's, with the same forwards on both families, over QEMU's stream netdev."""
import hashlib
import os
import re
import socket
import ssl
import subprocess
import time

import pytest

from conftest import CA_CERT, Dut, Endpoint, _board_image
from httpwire import Conn, request
TOKEN = "six-T"
AUTH = "Bearer " + TOKEN
PEER6 = re.compile(r"^\[fec0::2\]:\d{1,5}$")
PEER4 = re.compile(r"^10\.0\.2\.2:\d{1,5}$")

# Accepts the token; refuses everything else, naming the peer it saw, so that a refusal shows req.peer.
PEER_POLICY = """
function on_request(req)
  log("peer " .. req.peer .. " " .. req.method .. " " .. req.path)
  if req.method == "GET" and req.path == "/_status" then return true end
  if auth.bearer(req.headers.authorization) ~= config.token then
    local message = "refused for " .. req.peer
    if req.expect ~= nil then return {status = 417, message = message} end
    return {status = 403, message = message}
  end
  return true
end
"""


class Endpoint6(Endpoint):
    """The device's port on [::1]: plain, or TLS (verified against the name localhost, which every
    development certificate carries)."""

    def url(self, path):
        return "%s://%s:%d%s" % (self.scheme, "localhost" if self.tls else "[::1]", self.port, path)

    def curl_args(self):
        if not self.tls:
            return ["-6"]
        return ["-6", "--cacert", CA_CERT, "--resolve", "localhost:%d:::1" % self.port]

    def connect(self, timeout):
        sock = socket.create_connection(("::1", self.port), timeout=timeout)
        assert sock.family == socket.AF_INET6
        if not self.tls:
            return sock
        ctx = ssl.create_default_context(cafile=CA_CERT)
        return ctx.wrap_socket(sock, server_hostname="localhost")


@pytest.fixture
def dev(target, launch, tmp_path):
    pol = tmp_path / "peer.lua"
    pol.write_text(PEER_POLICY)
    settings = {"token": TOKEN, "capacity": "3M"}
    if target.startswith("host"):
        d = launch(settings, policy=str(pol))
    else:
        from qemu_device import QemuDevice6
        device = QemuDevice6(_board_image(settings, str(pol)), str(tmp_path))
        d = Dut(target, device, TOKEN)
    # The [::1] forwards reach the device once it has its SLAAC address (DAD, then the router's answer).
    d.wait_for_log("ipv6: SLAAC address fec0::5054:ff:fe12:3456", timeout=20)
    d.web6 = Endpoint6(d.web.port, d.web.tls)
    yield d
    if not target.startswith("host"):
        d.stop()


def curl(endpoint, *args, timeout=60):
    """curl -v to the endpoint; the last argument is the path."""
    cmd = ["curl", "-sS", "-v"] + endpoint.curl_args() + list(args[:-1]) + [endpoint.url(args[-1])]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def access_lines(dev, mark, text):
    return [l for l in dev.lines[mark:] if text in l and " - - [" in l]


def test_console_lists_both_forwards_and_the_addresses(dev):
    dev.wait_for_log("ipv6: link-local address fe80::5054:ff:fe12:3456")
    if dev.board == "host":
        port = dev.web.port
        name = "https" if dev.web.tls else "http"
        dev.wait_for_log("postern: %s on 127.0.0.1:%d and [::1]:%d (device port" % (name, port, port))


def test_curl6_upload_gets_100_then_201_and_the_log_shows_the_ipv6_peer(dev, tmp_path):
    body = os.urandom(512 * 1024)
    src = tmp_path / "fw.bin"
    src.write_bytes(body)
    mark = dev.log_mark()
    r = curl(dev.web6, "-T", str(src), "-H", "Authorization: " + AUTH, "/files/fw.bin")
    assert r.returncode == 0, r.stderr
    assert "Connected to" in r.stderr and ("(::1)" in r.stderr or "::1 port" in r.stderr), r.stderr
    i100 = r.stderr.find("< HTTP/1.1 100 Continue")
    i201 = r.stderr.find("< HTTP/1.1 201 Created")
    assert 0 <= i100 < i201, r.stderr
    assert '"sha256":"%s"' % hashlib.sha256(body).hexdigest() in r.stdout.replace(" ", "")
    assert dev.read_file("fw.bin") == body
    line = dev.wait_for_log('"PUT /files/fw.bin HTTP/1.1" 201', start=mark)
    assert line.startswith("fec0::2 - - ["), line
    peer = dev.wait_for_log("peer [fec0::2]:", start=mark).split("peer ", 1)[1].split(" ")[0]
    assert PEER6.match(peer), peer


def test_refusal_over_ipv6_is_417_and_names_the_ipv6_peer(dev):
    mark = dev.log_mark()
    c = Conn(dev.web6)
    c.send(b"PUT /files/no.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer wrong\r\nContent-Length: 100000\r\n"
           b"Expect: 100-continue\r\n\r\n")
    r = c.read_response()
    assert r.status == 417, r
    doc = r.json()
    assert doc["error"] == "expectation_failed"
    peer = doc["message"].split("refused for ", 1)[1]
    assert PEER6.match(peer), doc
    # The policy's peer is this very connection: the router's address and our socket's port as slirp kept it.
    line = dev.wait_for_log('"PUT /files/no.bin HTTP/1.1" 417', start=mark)
    assert line.startswith("fec0::2 - - ["), line
    assert dev.files() == []


def test_curl6_stops_after_417(dev, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(256 * 1024))
    mark = dev.log_mark()
    r = curl(dev.web6, "-T", str(src), "-H", "Authorization: Bearer nope", "/files/x.bin")
    assert "< HTTP/1.1 417 Expectation Failed" in r.stderr, r.stderr
    assert "100 Continue" not in r.stderr and "We are completely uploaded" not in r.stderr
    assert "refused for [fec0::2]:" in r.stdout, r.stdout
    time.sleep(0.3)
    assert len(access_lines(dev, mark, '"PUT /files/x.bin')) == 1
    assert dev.files() == []


def test_download_over_ipv6_and_ipv4_gives_the_same_bytes(dev):
    body = os.urandom(300 * 1024)
    r = request(dev.web6, "PUT", "/files/dl.bin", body, {"Authorization": AUTH}, timeout=30)
    assert r.status == 201, r
    got6 = request(dev.web6, "GET", "/files/dl.bin", None, {"Authorization": AUTH}, timeout=30)
    got4 = request(dev.web, "GET", "/files/dl.bin", None, {"Authorization": AUTH}, timeout=30)
    assert got6.status == 200 and got6.body == body
    assert got4.status == 200 and got4.body == body
    listing = request(dev.web6, "GET", "/files/", None, {"Authorization": AUTH})
    assert [f["name"] for f in listing.json()["files"]] == ["dl.bin"]


def test_both_families_at_once_each_with_its_own_peer(dev):
    """An upload held open over IPv6 while IPv4 requests are served; req.peer per family."""
    body = os.urandom(64 * 1024)
    mark = dev.log_mark()
    c6 = Conn(dev.web6)
    c6.send(b"PUT /files/both.bin HTTP/1.1\r\nHost: d\r\nAuthorization: " + AUTH.encode() +
            b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:1000])
    # Plain HTTP over IPv4: a board holds one TLS session, which the IPv6 upload has.
    r4 = request(Endpoint(dev.device.http, False), "PUT", "/files/v4.bin", b"four", {"Authorization": "Bearer wrong"})
    assert r4.status == 403 and PEER4.match(r4.json()["message"].split("refused for ", 1)[1]), r4
    c6.send(body[1000:])
    r6 = c6.read_response(timeout=30)
    assert r6.status == 201, r6
    assert dev.read_file("both.bin") == body
    # The access line follows the answer out: wait for it.
    assert dev.wait_for_log('"PUT /files/v4.bin HTTP/1.1" 403', start=mark).startswith("10.0.2.2 - - [")
    assert dev.wait_for_log('"PUT /files/both.bin HTTP/1.1" 201', start=mark).startswith("fec0::2 - - [")


@pytest.mark.targets("host", why="the option is the simulator's; one run covers it")
def test_ipv6_off_forwards_ipv4_only(target, start_device):
    dev = start_device("--ipv6", "off", "--set", "token=" + TOKEN)
    dev.wait_for_log("ipv6: off")
    line = dev.wait_for_log("postern: http on 127.0.0.1:%d (device port 80)" % dev.http)
    assert "[::1]" not in "\n".join(dev.lines), dev.lines
    with pytest.raises(OSError):
        socket.create_connection(("::1", dev.http), timeout=5).close()
    r = request(dev.http, "GET", "/_status")
    assert r.status == 200, (line, r)
