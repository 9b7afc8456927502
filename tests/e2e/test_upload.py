"""test_upload.py: uploads end to end: Expect/100/417 decided by the Lua policy, bytes on the wire, files on storage."""
import base64
import hashlib
import json
import os
import subprocess
import time

import pytest

from conftest import DEFAULT_TARGETS
from httpwire import Conn, request

# Uploads also run on the board's timed flashes (FLASH_TIMING=nor, slow): every call there may pend.
TARGETS = DEFAULT_TARGETS + ("mps2-nor", "mps2-slow", "host-rtos", "lm3s")  # host-rtos: NO_SYS=0; lm3s: the SD card board

TOKEN = "s3cret-T"
AUTH = "Bearer " + TOKEN
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def dev(launch):
    return launch({"token": TOKEN, "capacity": "3M"})  # the most the mps2-an385 flash model holds


def stored(dev, name):
    return dev.read_file(name)


def visible_files(dev):
    return dev.files()


def status_doc(dev):
    r = request(dev.web, "GET", "/_status")
    assert r.status == 200
    return r.json()


def curl(dev, *args, timeout=120):
    """curl -v against the device's endpoint; the last argument is the path."""
    cmd = ["curl", "-sS", "-v"] + dev.web.curl_args() + list(args[:-1]) + [dev.web.url(args[-1])]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


# ---- Expect: 100-continue, accepted -------------------------------------------

def test_expect_accepted_100_arrives_before_any_body_byte_then_201(dev):
    body = os.urandom(1024 * 1024)
    c = Conn(dev.web)
    c.send(("PUT /files/fw.bin HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nContent-Length: %d\r\n"
            "Expect: 100-continue\r\n\r\n" % (AUTH, len(body))).encode())
    interim = c.read_response()
    assert interim.status == 100 and interim.raw_head == b"HTTP/1.1 100 Continue"
    c.send(body)
    final = c.read_response()
    assert final.status == 201, final
    doc = final.json()
    assert doc["sha256"] == hashlib.sha256(body).hexdigest() and doc["size"] == len(body)
    assert final.headers["repr-digest"] == "sha-256=:%s:" % base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert stored(dev, "fw.bin") == body
    # The same connection serves the download: identical bytes.
    c.send(b"GET /files/fw.bin HTTP/1.1\r\nHost: d\r\nAuthorization: " + AUTH.encode() + b"\r\n\r\n")
    got = c.read_response()
    assert got.status == 200 and got.body == body
    c.close()


def test_curl_upload_with_expect_shows_100_then_201_and_same_sha(dev, tmp_path):
    src = tmp_path / "5MiB.bin"
    data = os.urandom(2 * 1024 * 1024)
    src.write_bytes(data)
    r = curl(dev, "-T", str(src), "-H", "Authorization: " + AUTH, "/files/fw.bin")
    assert "< HTTP/1.1 100 Continue" in r.stderr
    assert "< HTTP/1.1 201 Created" in r.stderr
    assert json.loads(r.stdout)["sha256"] == hashlib.sha256(data).hexdigest()
    assert hashlib.sha256(stored(dev, "fw.bin")).hexdigest() == hashlib.sha256(data).hexdigest()
    # A second upload of the same name replaces it: 200, new content.
    data2 = os.urandom(1000)
    src.write_bytes(data2)
    r = curl(dev, "-T", str(src), "-H", "Authorization: " + AUTH, "/files/fw.bin")
    assert "< HTTP/1.1 200 OK" in r.stderr
    assert stored(dev, "fw.bin") == data2


def test_device_logs_the_request_in_common_log_format(dev):
    mark = dev.log_mark()
    request(dev.web, "PUT", "/files/a.txt", b"abc", {"Authorization": AUTH})
    line = dev.wait_for_log('"PUT /files/a.txt HTTP/1.1" 201 3', start=mark)
    assert line.startswith("10.0.2.2 - - [")


# ---- Expect: 100-continue, refused --------------------------------------------

@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic Zm9vOmJhcg=="])
def test_expect_refused_no_100_417_json_and_close(dev, auth):
    c = Conn(dev.web)
    head = "PUT /files/x.bin HTTP/1.1\r\nHost: d\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n"
    if auth:
        head += "Authorization: %s\r\n" % auth
    c.send(head.encode() + b"\r\n")
    r = c.read_response()
    assert r.status == 417, r
    assert r.headers["connection"] == "close"
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["error"] == "expectation_failed" and doc["message"]
    assert c.closed_by_peer()
    assert visible_files(dev) == []


def test_curl_stops_without_sending_the_body_after_417(dev, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(1024 * 1024))
    mark = dev.log_mark()
    r = curl(dev, "-T", str(src), "-H", "Authorization: Bearer nope", "/files/x.bin")
    assert "< HTTP/1.1 417 Expectation Failed" in r.stderr
    assert "100 Continue" not in r.stderr
    assert "We are completely uploaded" not in r.stderr
    # Exactly one request reached the device: curl did not retry.
    time.sleep(0.5)
    assert sum('"PUT /files/x.bin' in l for l in dev.lines[mark:]) == 1
    assert visible_files(dev) == []


def test_unknown_expectation_gets_417(dev):
    r = request(dev.web, "PUT", "/files/y", b"", {"Expect": "something-else", "Content-Length": "10",
                                                   "Authorization": AUTH})
    assert r.status == 417 and r.json()["error"] == "expectation_failed"
    assert visible_files(dev) == []


def test_http10_with_expect_gets_no_100(dev):
    c = Conn(dev.web)
    c.send(("PUT /files/old.txt HTTP/1.0\r\nAuthorization: %s\r\nContent-Length: 5\r\n"
            "Expect: 100-continue\r\n\r\n" % AUTH).encode())
    time.sleep(0.3)
    c.send(b"hello")
    r = c.read_response()
    assert r.status == 201  # no interim 100 came before it
    assert stored(dev, "old.txt") == b"hello"
    c.close()


# ---- Retryable refusal ----------------------------------------------------------

RETRY_POLICY = """
-- A policy whose Expect refusals only mean "send it again without Expect".
function on_request(req)
  if req.method ~= "PUT" then return true end
  if req.expect then
    return {status = 417, message = "send the body without Expect", retry = true}
  end
  if req.name == "yes.bin" then return true end
  return 403, "no"
end
"""


@pytest.mark.parametrize("name,final", [("yes.bin", 201), ("no.bin", 403)])
def test_retryable_417_curl_retries_on_the_same_connection_and_sends_the_body_once(launch, tmp_path, name, final):
    pol = tmp_path / "retry.lua"
    pol.write_text(RETRY_POLICY)
    dev = launch(policy=str(pol))
    src = tmp_path / "body.bin"
    src.write_bytes(b"data" * 1000)
    mark = dev.log_mark()
    r = curl(dev, "-T", str(src), "-w", "%{num_connects} %{size_upload}\n", "/files/" + name)
    assert "< HTTP/1.1 417" in r.stderr
    assert "< HTTP/1.1 %d" % final in r.stderr
    # One connection, and the body crossed it at most once: for the retry, never into the refused request
    # (a retry refused at header time may stop curl before it sent all of it).
    connects, sent = r.stdout.split()[-2:]
    assert connects == "1", r.stdout
    assert (int(sent) == 4000) if final == 201 else (int(sent) <= 4000), r.stdout
    # The policy decided twice: once with Expect, once for the retry.
    dev.wait_for_log('"PUT /files/%s HTTP/1.1" %d' % (name, final), start=mark)
    assert sum('"PUT /files/%s' % name in l for l in dev.lines[mark:]) == 2
    assert (stored(dev, name) == b"data" * 1000) == (final == 201)


# ---- Space ------------------------------------------------------------------------

def test_too_large_with_expect_417_without_expect_413_or_507_old_file_intact(dev):
    old = os.urandom(2000)
    assert request(dev.web, "PUT", "/files/keep.bin", old, {"Authorization": AUTH}).status == 201
    free = status_doc(dev)["storage"]["free"]
    c = Conn(dev.web)
    c.send(("PUT /files/keep.bin HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nContent-Length: %d\r\n"
            "Expect: 100-continue\r\n\r\n" % (AUTH, free + 1)).encode())
    assert c.read_response().status == 417
    c.close()
    c = Conn(dev.web)
    c.send(("PUT /files/keep.bin HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n"
            % (AUTH, free + 1)).encode() + b"x" * 5000)
    r = c.read_response()
    assert r.status == 507, r
    c.close()
    r = request(dev.web, "PUT", "/files/keep.bin", None, {"Authorization": AUTH, "Content-Length": str(10 ** 12)})
    assert r.status == 413
    assert stored(dev, "keep.bin") == old
    assert status_doc(dev)["storage"]["free"] == free


def test_chunked_over_quota_midstream_507_or_413_nothing_stored_space_back(launch):
    dev = launch({"token": TOKEN, "capacity": "256K"})
    free = status_doc(dev)["storage"]["free"]
    c = Conn(dev.web)
    c.send(("PUT /files/stream.bin HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nTransfer-Encoding: chunked\r\n"
            "Expect: 100-continue\r\n\r\n" % AUTH).encode())
    assert c.read_response().status == 100
    chunk = b"%x\r\n%s\r\n" % (16384, b"z" * 16384)
    try:
        for _ in range(40):  # 640 KiB into a 256 KiB flash
            c.send(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = c.read_response()
    assert r.status in (413, 507)
    c.close()
    assert visible_files(dev) == []
    assert status_doc(dev)["storage"]["free"] == free


def test_chunked_upload_within_quota_is_stored(dev):
    c = Conn(dev.web)
    parts = [os.urandom(n) for n in (1, 100, 5000, 70000)]
    c.send(("PUT /files/ch.bin HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
            % AUTH).encode())
    for p in parts:
        c.send(b"%x;ext=1\r\n" % len(p) + p + b"\r\n")
    c.send(b"0\r\nX-Trailer: t\r\n\r\n")
    r = c.read_response()
    assert r.status == 201
    assert stored(dev, "ch.bin") == b"".join(parts)
    c.close()


# ---- Refused, and the client sends the body anyway ------------------------------

def test_refused_body_sent_anyway_is_never_parsed_as_a_request(dev):
    c = Conn(dev.web)
    smuggled = b"GET /_status HTTP/1.1\r\nHost: d\r\n\r\n" * 50
    c.send(("PUT /files/x HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n" % len(smuggled)).encode() + smuggled)
    r = c.read_response()
    assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["connection"] == "close"
    assert c.nothing_more(1.5)  # no second response on this connection
    c.close()
    assert visible_files(dev) == []
    assert not any('"GET /_status' in l for l in dev.lines)


def test_without_expect_wrong_token_403_missing_401(dev):
    r = request(dev.web, "PUT", "/files/a", b"abc", {"Authorization": "Bearer bad"})
    assert r.status == 403 and r.json()["error"] == "forbidden"
    r = request(dev.web, "PUT", "/files/a", b"abc")
    assert r.status == 401 and "www-authenticate" in r.headers
    assert visible_files(dev) == []


# ---- Integrity ----------------------------------------------------------------------

def test_content_digest_mismatch_400_nothing_stored(dev):
    body = b"payload" * 100
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    r = request(dev.web, "PUT", "/files/d.bin", body, {"Authorization": AUTH,
                                                        "Content-Digest": "sha-256=:%s:" % wrong})
    assert r.status == 400 and r.json()["error"] == "digest_mismatch"
    assert visible_files(dev) == []
    right = base64.b64encode(hashlib.sha256(body).digest()).decode()
    r = request(dev.web, "PUT", "/files/d.bin", body, {"Authorization": AUTH,
                                                        "Content-Digest": "sha-256=:%s:" % right})
    assert r.status == 201 and stored(dev, "d.bin") == body


NO_DIGEST_POLICY = """
function on_request(req)
  if req.headers.authorization ~= "Bearer " .. config.token then return 403 end
  if req.name ~= nil and req.name:sub(1, 4) == "log-" then return { status = 100, digest = false } end
  return true
end
"""


def test_policy_digest_false_stores_without_digest_content_digest_still_checked(launch, tmp_path):
    policy = tmp_path / "nodigest.lua"
    policy.write_text(NO_DIGEST_POLICY)
    dev = launch({"token": TOKEN, "capacity": "3M"}, policy=str(policy))
    body = os.urandom(200000)
    a = {"Authorization": AUTH}
    r = request(dev.web, "PUT", "/files/log-1.txt", body, a)
    assert r.status == 201, r
    assert r.json() == {"name": "log-1.txt", "size": len(body)}  # no sha256 field
    assert "repr-digest" not in r.headers
    assert stored(dev, "log-1.txt") == body
    # Another name: hashed as always.
    r = request(dev.web, "PUT", "/files/fw.bin", body, a)
    assert r.status == 201 and r.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert r.headers["repr-digest"] == "sha-256=:%s:" % base64.b64encode(hashlib.sha256(body).digest()).decode()
    # A Content-Digest from the client is checked even so, and the answer then carries the digest.
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    r = request(dev.web, "PUT", "/files/log-2.txt", body, dict(a, **{"Content-Digest": "sha-256=:%s:" % wrong}))
    assert r.status == 400 and r.json()["error"] == "digest_mismatch"
    assert sorted(visible_files(dev)) == ["fw.bin", "log-1.txt"]
    right = base64.b64encode(hashlib.sha256(body).digest()).decode()
    r = request(dev.web, "PUT", "/files/log-2.txt", body, dict(a, **{"Content-Digest": "sha-256=:%s:" % right}))
    assert r.status == 201 and r.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert stored(dev, "log-2.txt") == body


def test_client_disconnect_mid_upload_leaves_nothing_and_old_version(dev):
    old = b"old version"
    assert request(dev.web, "PUT", "/files/v.bin", old, {"Authorization": AUTH}).status == 201
    c = Conn(dev.web)
    c.send(("PUT /files/v.bin HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nContent-Length: 100000\r\n\r\n"
            % AUTH).encode() + b"n" * 30000)
    time.sleep(0.3)
    c.close()
    dev.wait_for_log("nothing stored")
    assert stored(dev, "v.bin") == old
    assert visible_files(dev) == ["v.bin"]


# ---- Policy failures fail closed ------------------------------------------------------

@pytest.mark.parametrize("script", [
    "function on_request(req) while true do end end",
    "function on_request(req) local t = {} local i = 0 while true do i = i + 1 t[i] = string.rep('x', 64) .. i end end",
])
def test_runaway_policy_500_fast_and_next_request_served(launch, tmp_path, script):
    pol = tmp_path / "bad.lua"
    pol.write_text("-- misbehaving policy\nfunction ok(req) return true end\n" + script + "\n")
    dev = launch(policy=str(pol))
    c = Conn(dev.web)  # connected (and any TLS handshake done) before the clock starts
    t = time.monotonic()
    c.send(b"PUT /files/a HTTP/1.1\r\nHost: d\r\nContent-Length: 3\r\n\r\nabc")
    r = c.read_response()
    c.close()
    assert time.monotonic() - t < 1.0
    assert r.status == 500 and r.json()["error"] == "policy_error"
    dev.wait_for_log("policy: error")
    r = request(dev.web, "PUT", "/files/a", b"abc")
    assert r.status == 500  # the VM is still usable, and still refuses
    assert request(dev.web, "GET", "/files/").status == 500


def test_policy_that_does_not_load_stops_the_start(tmp_path):
    from conftest import HOST_BINARY
    pol = tmp_path / "broken.lua"
    pol.write_text("function on_request(req)\n  return 100\n")  # missing end
    r = subprocess.run([HOST_BINARY, "--policy", str(pol), "--storage", str(tmp_path / "s"), "--http", "0",
                        "--https", "0", "--echo", "0", "--discard", "0"],
                       capture_output=True, text=True, timeout=20, cwd=ROOT)
    assert r.returncode != 0
    assert "broken.lua:" in r.stdout and "did not load" in r.stdout


# ---- Routes, keep-alive, pipelining -------------------------------------------------------

def test_routes_listing_delete_head_and_pipelining(dev):
    for n, b in (("b.txt", b"bb"), ("a.txt", b"a")):
        assert request(dev.web, "PUT", "/files/" + n, b, {"Authorization": AUTH}).status == 201
    c = Conn(dev.web)
    a = ("Authorization: %s\r\n" % AUTH).encode()
    c.send(b"GET /files/ HTTP/1.1\r\nHost: d\r\n" + a + b"\r\n"
           b"HEAD /files/b.txt HTTP/1.1\r\nHost: d\r\n" + a + b"\r\n"
           b"DELETE /files/a.txt HTTP/1.1\r\nHost: d\r\n" + a + b"\r\n"
           b"GET /files/a.txt HTTP/1.1\r\nHost: d\r\n" + a + b"\r\n")
    r = c.read_response()
    entry = lambda n, b: {"name": n, "size": len(b), "etag": '"%s"' % hashlib.sha256(b).hexdigest()[:32],
                          "sha256": base64.b64encode(hashlib.sha256(b).digest()).decode()}
    assert r.status == 200 and r.json() == {"files": [entry("a.txt", b"a"), entry("b.txt", b"bb")]}
    r = c.read_response(head_request=True)
    assert r.status == 200 and r.headers["content-length"] == "2"
    assert c.read_response().status == 204
    assert c.read_response().status == 404
    c.close()
    assert visible_files(dev) == ["b.txt"]


@pytest.mark.parametrize("path,status", [("/files/..", 400), ("/files/.hidden", 400), ("/files/a%2Fb", 400),
                                         ("/files/%00x", 400), ("/nope", 404), ("/files/%zz", 400)])
def test_bad_names_and_routes(dev, path, status):
    r = request(dev.web, "GET", path, None, {"Authorization": AUTH})
    assert r.status == status, r
    assert "error" in r.json()


def test_status_pools_and_lua_arena_back_at_baseline(dev):
    base = status_doc(dev)
    for i in range(5):
        request(dev.web, "PUT", "/files/s%d" % i, os.urandom(20000), {"Authorization": AUTH})
        request(dev.web, "PUT", "/files/s%d" % i, b"x", {"Authorization": "Bearer bad"})
        request(dev.web, "GET", "/files/s%d" % i, None, {"Authorization": AUTH})
    time.sleep(2.5)  # lingering closes end
    after = status_doc(dev)
    for pool in ("tcp_seg", "pbuf_pool", "pbuf_ref", "altcp_pcb"):
        assert after["memory"]["lwip"][pool]["used"] == base["memory"]["lwip"][pool]["used"], pool
    assert after["memory"]["lwip"]["heap"]["used"] == base["memory"]["lwip"]["heap"]["used"]
    assert after["memory"]["lua"]["live"] == base["memory"]["lua"]["live"]
    assert after["connections"]["active"] == 1  # this request's own


def test_readme_example_policy_caps(launch):
    dev = launch({"token": TOKEN}, policy=os.path.join(ROOT, "scripts", "examples", "caps.lua"))
    a = {"Authorization": AUTH}
    assert request(dev.web, "PUT", "/files/fw-1.bin", b"f" * 1000, a).status == 201
    assert request(dev.web, "PUT", "/files/other.bin", b"o", a).status == 403
    assert request(dev.web, "PUT", "/files/logs-1.txt", b"l" * 70000, a).status == 413
    c = Conn(dev.web)
    c.send(("PUT /files/logs-2.txt HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
            "%x\r\n%s\r\n0\r\n\r\n" % (AUTH, 70000, "l" * 70000)).encode())
    assert c.read_response().status == 413  # vetoed by on_stored
    c.close()
    assert visible_files(dev) == ["fw-1.bin"]


def test_slow_head_gets_408_and_close_device_keeps_serving(dev):
    c = Conn(dev.web, timeout=20)
    c.send(b"PUT /files/slow HTTP/1.1\r\nHost: d\r\n")  # and never the end of the head
    r = c.read_response(timeout=20)
    assert r.status == 408 and r.headers["connection"] == "close"
    assert r.json()["error"] == "request_timeout"
    assert c.closed_by_peer()
    assert request(dev.web, "GET", "/_status").status == 200
