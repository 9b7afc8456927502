"""test_http_semantics.py: ETags, preconditions decided before 100 (412, 304) and ranged downloads (206, 416), with curl and raw sockets."""
import base64
import hashlib
import json
import os
import subprocess

import pytest

from httpwire import Conn, request

TARGETS = ("host", "mps2", "lm3s")

TOKEN = "s3cret-T"
AUTH = "Bearer " + TOKEN
A = {"Authorization": AUTH}


@pytest.fixture
def dev(launch):
    return launch({"token": TOKEN, "capacity": "3M"})


def etag_of(data):
    return '"%s"' % hashlib.sha256(data).hexdigest()[:32]


def curl(dev, *args, timeout=60):
    """curl -v against the device; the last argument is the path. Returns (stdout bytes, stderr text)."""
    cmd = ["curl", "-sS", "-v", "-H", "Authorization: " + AUTH] + dev.web.curl_args() + list(args[:-1]) + \
        [dev.web.url(args[-1])]
    r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    return r.stdout, r.stderr.decode("latin-1")


def put(dev, name, data, headers=None):
    return request(dev.web, "PUT", "/files/" + name, data, dict(A, **(headers or {})), timeout=30)


def get(dev, name, headers=None, method="GET"):
    return request(dev.web, method, "/files/" + name, None, dict(A, **(headers or {})), timeout=30)


def test_etag_on_upload_get_head_and_listing(dev):
    data = os.urandom(50000)
    r = put(dev, "a.bin", data)
    assert r.status == 201 and r.headers["etag"] == etag_of(data)
    sha_b64 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    for method in ("GET", "HEAD"):
        g = get(dev, "a.bin", method=method)
        assert g.status == 200 and g.headers["etag"] == etag_of(data), g
        assert g.headers["repr-digest"] == "sha-256=:%s:" % sha_b64
        assert g.headers["accept-ranges"] == "bytes"
        assert g.headers["content-length"] == str(len(data))
    doc = request(dev.web, "GET", "/files/", None, A).json()
    assert doc["files"] == [{"name": "a.bin", "size": len(data), "etag": etag_of(data), "sha256": sha_b64}]
    data2 = os.urandom(100)
    r = put(dev, "a.bin", data2)
    assert r.status == 200 and r.headers["etag"] == etag_of(data2)


def test_if_none_match_star_on_existing_file_412_without_100_and_file_unchanged(dev, tmp_path):
    old = os.urandom(20000)
    assert put(dev, "fw.bin", old).status == 201
    new = tmp_path / "fw.bin"
    new.write_bytes(os.urandom(300 * 1024))
    out, err = curl(dev, "-T", str(new), "-H", "If-None-Match: *", "/files/fw.bin")
    assert "< HTTP/1.1 412 Precondition Failed" in err, err
    assert "100 Continue" not in err
    assert json.loads(out)["error"] == "precondition_failed"
    assert dev.read_file("fw.bin") == old
    # Create only: a new name passes.
    out, err = curl(dev, "-T", str(new), "-H", "If-None-Match: *", "/files/fresh.bin")
    assert "< HTTP/1.1 100 Continue" in err and "< HTTP/1.1 201 Created" in err, err
    assert dev.read_file("fresh.bin") == new.read_bytes()


def test_if_match_replaces_only_the_known_version(dev):
    v1, v2, v3 = os.urandom(3000), os.urandom(4000), os.urandom(5000)
    assert put(dev, "cfg", v1).status == 201
    r = put(dev, "cfg", v2, {"If-Match": etag_of(v1)})
    assert r.status == 200 and r.headers["etag"] == etag_of(v2)
    r = put(dev, "cfg", v3, {"If-Match": etag_of(v1)})  # stale now
    assert r.status == 412 and r.json()["error"] == "precondition_failed"
    assert dev.read_file("cfg") == v2
    r = put(dev, "cfg", v3, {"If-Match": '"x", ' + etag_of(v2)})  # a list
    assert r.status == 200
    assert put(dev, "nothing", v1, {"If-Match": "*"}).status == 412  # no file to match
    assert put(dev, "cfg", v1, {"If-Match": "W/" + etag_of(v3)}).status == 412  # If-Match compares strongly
    assert put(dev, "cfg", v1, {"If-Match": "nonsense"}).status == 400
    # DELETE too.
    assert request(dev.web, "DELETE", "/files/cfg", None, dict(A, **{"If-Match": etag_of(v1)})).status == 412
    assert request(dev.web, "DELETE", "/files/cfg", None, dict(A, **{"If-Match": etag_of(v3)})).status == 204
    assert dev.files() == []


def test_policy_refusal_comes_before_the_precondition(dev):
    r = request(dev.web, "PUT", "/files/x", b"abc", {"Authorization": "Bearer wrong", "If-Match": '"nope"'})
    assert r.status == 403


def test_get_if_none_match_304_and_if_match_412(dev):
    data = os.urandom(10000)
    assert put(dev, "f", data).status == 201
    for method in ("GET", "HEAD"):
        r = get(dev, "f", {"If-None-Match": 'W/"other", W/' + etag_of(data)}, method)  # weak comparison
        assert r.status == 304 and r.headers["etag"] == etag_of(data) and r.body == b"", r
        assert "content-length" not in r.headers
    assert get(dev, "f", {"If-None-Match": '"other"'}).body == data
    assert get(dev, "f", {"If-Match": '"other"'}).status == 412
    assert get(dev, "f", {"If-Match": etag_of(data)}).body == data
    assert get(dev, "missing", {"If-None-Match": "*"}).status == 404
    # The keep-alive connection goes on after a 304.
    c = Conn(dev.web)
    req = ("GET /files/f HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nIf-None-Match: %s\r\n\r\n"
           % (AUTH, etag_of(data))).encode()
    c.send(req + req.replace(b"If-None-Match", b"X-No"))
    assert c.read_response().status == 304
    assert c.read_response().body == data
    c.close()


def test_curl_ranges(dev, tmp_path):
    data = os.urandom(70000)
    assert put(dev, "r.bin", data).status == 201
    out, err = curl(dev, "-r", "0-9", "/files/r.bin")
    assert "< HTTP/1.1 206 Partial Content" in err and "< Content-Range: bytes 0-9/70000" in err, err
    assert out == data[:10]
    out, err = curl(dev, "-r", "-5", "/files/r.bin")
    assert "206" in err and "bytes 69995-69999/70000" in err and out == data[-5:]
    out, err = curl(dev, "-r", "5-", "/files/r.bin")
    assert "206" in err and out == data[5:]
    out, err = curl(dev, "-r", "65000-66000", "/files/r.bin")  # across the flash's blocks
    assert out == data[65000:66001]
    out, err = curl(dev, "-r", "70000-", "/files/r.bin")
    assert "< HTTP/1.1 416 Range Not Satisfiable" in err and "< Content-Range: bytes */70000" in err, err
    out, err = curl(dev, "-r", "0-1,5-6", "/files/r.bin")  # several ranges: the whole file
    assert "< HTTP/1.1 200 OK" in err and out == data
    r = get(dev, "r.bin", {"Range": "bytes=oops"})  # malformed: ignored
    assert r.status == 200 and r.body == data
    r = get(dev, "r.bin", {"Range": "bytes=10-19", "If-Range": etag_of(data)})
    assert r.status == 206 and r.body == data[10:20]
    r = get(dev, "r.bin", {"Range": "bytes=10-19", "If-Range": '"stale"'})
    assert r.status == 200 and r.body == data
    r = get(dev, "r.bin", {"Range": "bytes=10-19", "If-Range": "Sun, 22 Nov 2026 04:35:00 GMT"})
    assert r.status == 200 and r.body == data
    r = get(dev, "r.bin", {"Range": "bytes=10-19"}, "HEAD")
    assert r.status == 206 and r.headers["content-length"] == "10" and r.body == b""


def test_interrupted_download_resumed_with_curl_gives_the_same_sha256(dev, tmp_path):
    data = os.urandom(1024 * 1024)
    assert put(dev, "big.bin", data).status == 201
    part = tmp_path / "big.bin"
    part.write_bytes(data[:300 * 1024 + 7])  # what an interrupted download left
    out, err = curl(dev, "-C", "-", "-o", str(part), "/files/big.bin", timeout=120)
    assert "< HTTP/1.1 206 Partial Content" in err, err
    assert hashlib.sha256(part.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_without_expect_a_failed_precondition_drains_the_body_and_answers_412(dev):
    old = os.urandom(1000)
    assert put(dev, "keep.bin", old).status == 201
    body = os.urandom(512 * 1024)
    c = Conn(dev.web, timeout=60)
    c.send(("PUT /files/keep.bin HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nIf-None-Match: *\r\n"
            "Content-Length: %d\r\n\r\n" % (AUTH, len(body))).encode() + body)  # all of it before reading
    r = c.read_response(timeout=30)
    assert r.status == 412 and r.headers.get("connection") == "close", r
    assert c.closed_by_peer(10)
    c.close()
    assert dev.read_file("keep.bin") == old
