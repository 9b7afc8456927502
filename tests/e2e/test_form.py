"""test_form.py: form uploads (POST /files/, multipart/form-data) end to end: curl -F, hand-built forms in odd pieces, a browser's post, the two-step decision, refusals, files on storage."""
import base64
import hashlib
import http.client
import json
import os
import socket
import subprocess
import time
import urllib.parse

import pytest

from httpwire import Conn, request

TARGETS = ("host", "host-https", "mps2", "mps2-nor", "host-rtos", "lm3s")  # mps2-nor: every storage call may pend; host-rtos: NO_SYS=0; lm3s: the SD card board

TOKEN = "s3cret-T"
AUTH = "Bearer " + TOKEN
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def dev(launch):
    return launch({"token": TOKEN, "capacity": "3M"})


def curl(dev, *args, timeout=120):
    """curl -v against the device's endpoint; the last argument is the path."""
    cmd = ["curl", "-sS", "-v"] + dev.web.curl_args() + list(args[:-1]) + [dev.web.url(args[-1])]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def form(boundary, parts, epilogue=b"\r\n"):
    """A multipart/form-data body: parts are (headers, content) pairs."""
    out = b""
    for headers, content in parts:
        out += b"--" + boundary + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + content + b"\r\n"
    return out + b"--" + boundary + b"--" + epilogue


def file_part(filename, content, field=b"file"):
    return ([b'Content-Disposition: form-data; name="' + field + b'"; filename="' + filename + b'"',
             b"Content-Type: application/octet-stream"], content)


def field_part(name, value):
    return ([b'Content-Disposition: form-data; name="' + name + b'"'], value)


def status_ok(dev):
    return request(dev.web, "GET", "/_status").status == 200


# ---- curl -F -------------------------------------------------------------------

def test_curl_form_1mib_gets_100_then_201_and_the_stored_sha256(dev, tmp_path):
    src = tmp_path / "fw.bin"
    data = os.urandom(1024 * 1024)
    src.write_bytes(data)
    r = curl(dev, "-F", "file=@%s" % src, "-H", "Authorization: " + AUTH, "/files/")
    assert "> Expect: 100-continue" in r.stderr  # curl asks for it on a body this size
    assert "< HTTP/1.1 100 Continue" in r.stderr
    assert "< HTTP/1.1 201 Created" in r.stderr, r.stderr[-2000:]
    want = hashlib.sha256(data).hexdigest()
    assert json.loads(r.stdout) == {"name": "fw.bin", "size": len(data), "sha256": want}
    assert "< Repr-Digest: sha-256=:%s:" % base64.b64encode(hashlib.sha256(data).digest()).decode() in r.stderr
    assert hashlib.sha256(dev.read_file("fw.bin")).hexdigest() == want
    # The same name again replaces it: 200.
    data2 = os.urandom(5000)
    src.write_bytes(data2)
    r = curl(dev, "-F", "file=@%s" % src, "-H", "Authorization: " + AUTH, "/files")
    assert "< HTTP/1.1 200 OK" in r.stderr
    assert dev.read_file("fw.bin") == data2


def test_curl_form_with_text_fields_around_the_file(dev, tmp_path):
    src = tmp_path / "local-name.bin"
    data = os.urandom(70000)
    src.write_bytes(data)
    r = curl(dev, "-F", "note=before the file", "-F", "file=@%s;filename=stored.bin" % src, "-F", "after=1",
             "-H", "Authorization: " + AUTH, "/files/")
    assert "< HTTP/1.1 201 Created" in r.stderr, r.stderr[-2000:]
    assert json.loads(r.stdout)["name"] == "stored.bin"
    assert dev.read_file("stored.bin") == data
    assert dev.files() == ["stored.bin"]


def test_curl_form_chunked(dev, tmp_path):
    src = tmp_path / "c.bin"
    data = os.urandom(300000)
    src.write_bytes(data)
    r = curl(dev, "-F", "file=@%s" % src, "-H", "Transfer-Encoding: chunked", "-H", "Authorization: " + AUTH,
             "/files/")
    assert "> Transfer-Encoding: chunked" in r.stderr
    assert "< HTTP/1.1 201 Created" in r.stderr, r.stderr[-2000:]
    assert dev.read_file("c.bin") == data


# ---- Hand-built forms, sent in odd pieces ---------------------------------------

def send_in_pieces(dev, head, body, sizes):
    """Sends head then body cut by `sizes` (cycled), each piece on its own (Nagle off, a pause between)."""
    c = Conn(dev.web)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.send(head)
    at, i = 0, 0
    while at < len(body):
        n = sizes[i % len(sizes)]
        c.send(body[at:at + n])
        at += n
        i += 1
        if i < 200:
            time.sleep(0.002)
    return c


@pytest.mark.parametrize("chunked", [False, True])
def test_handmade_form_in_odd_pieces_with_delimiter_lookalikes(dev, chunked):
    boundary = b"x-7f3a"
    # The content holds the delimiter but for its last byte, CRs and LFs of all kinds, at every piece edge.
    content = (b"\r\n--x-7f3" + b"\r\r\n\n-\r\n--" + os.urandom(3000)) * 20 + b"\r\n--x-7f3\r"
    body = form(boundary, [field_part(b"a", b"v" * 100), file_part(b"odd.bin", content), field_part(b"b", b"w")])
    if chunked:
        wire, at, n = b"", 0, 1
        while at < len(body):
            wire += b"%x\r\n" % len(body[at:at + n]) + body[at:at + n] + b"\r\n"
            at += n
            n = n * 3 % 4099 + 1
        wire += b"0\r\n\r\n"
        framing = b"Transfer-Encoding: chunked\r\n"
    else:
        wire, framing = body, b"Content-Length: %d\r\n" % len(body)
    head = (b"POST /files/ HTTP/1.1\r\nHost: d\r\nAuthorization: " + AUTH.encode() + b"\r\n" + framing +
            b"Content-Type: multipart/form-data; boundary=\"" + boundary + b"\"\r\n\r\n")
    c = send_in_pieces(dev, head, wire, [1, 7, 13, 2, 1000, 3, 1460, 5])
    r = c.read_response(timeout=60)
    c.close()
    assert r.status == 201, r
    assert r.json()["sha256"] == hashlib.sha256(content).hexdigest()
    assert dev.read_file("odd.bin") == content


def http_client(dev):
    if dev.web.tls:
        import ssl
        from conftest import CA_CERT
        ctx = ssl.create_default_context(cafile=CA_CERT)
        return http.client.HTTPSConnection("localhost", dev.web.port, timeout=30, context=ctx)
    return http.client.HTTPConnection("127.0.0.1", dev.web.port, timeout=30)


def test_http_client_form_by_hand_in_odd_pieces(dev):
    """Python's http.client, no Expect, the form built by hand and written in odd pieces."""
    boundary = b"b" * 70  # the longest boundary
    content = os.urandom(50000) + b"\r\n--" + b"b" * 69 + b"\r\n"
    body = form(boundary, [field_part(b"x", b"1"), file_part(b"pieces.bin", content)])
    conn = http_client(dev)
    conn.putrequest("POST", "/files/")
    conn.putheader("Authorization", AUTH)
    conn.putheader("Content-Type", "multipart/form-data; boundary=" + boundary.decode())
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    at, n = 0, 1
    while at < len(body):
        conn.send(body[at:at + n])
        at += n
        n = n * 5 % 3001 + 1
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    conn.close()
    assert resp.status == 201
    assert doc == {"name": "pieces.bin", "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    assert dev.read_file("pieces.bin") == content


def test_http_client_form_with_an_empty_file(dev):
    body = form(b"q", [file_part(b"empty.bin", b"")])
    conn = http_client(dev)
    conn.request("POST", "/files/", body=body, headers={
        "Authorization": AUTH, "Content-Type": "multipart/form-data; boundary=q"})
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    conn.close()
    assert resp.status == 201
    assert doc == {"name": "empty.bin", "size": 0, "sha256": hashlib.sha256(b"").hexdigest()}
    assert dev.read_file("empty.bin") == b""


def test_browser_style_form_post_without_expect(dev):
    """What a browser's <form enctype="multipart/form-data"> sends: no Expect, Content-Length, UTF-8 filename."""
    boundary = b"----WebKitFormBoundary7MA4YWxkTrZu0gW"
    content = os.urandom(200000)
    body = form(boundary, [field_part(b"token", b"ignored"), file_part("r\u00e9sum\u00e9.bin".encode(), content)],
                epilogue=b"\r\n")
    head = ("POST /files/ HTTP/1.1\r\nHost: device\r\nConnection: keep-alive\r\nContent-Length: %d\r\n"
            "Origin: http://device\r\nContent-Type: multipart/form-data; boundary=%s\r\nAuthorization: %s\r\n"
            "Accept: text/html\r\n\r\n" % (len(body), boundary.decode(), AUTH)).encode()
    c = Conn(dev.web)
    c.send(head + body)
    r = c.read_response(timeout=60)
    assert r.status == 201, r
    assert r.json()["name"] == "r\u00e9sum\u00e9.bin"
    assert dev.files() == ["r\u00e9sum\u00e9.bin"]
    got = request(dev.web, "GET", "/files/" + urllib.parse.quote("r\u00e9sum\u00e9.bin"), headers={"Authorization": AUTH})
    assert got.status == 200 and got.body == content
    # Keep-alive: the next request on the connection is served.
    c.send(b"GET /files/ HTTP/1.1\r\nHost: d\r\nAuthorization: " + AUTH.encode() + b"\r\n\r\n")
    assert c.read_response().status == 200
    c.close()


# ---- Refusals ---------------------------------------------------------------------

def test_refused_token_gets_417_before_any_body_and_no_file(dev, tmp_path):
    src = tmp_path / "fw.bin"
    src.write_bytes(os.urandom(1024 * 1024))
    r = curl(dev, "-F", "file=@%s" % src, "-H", "Authorization: Bearer wrong", "/files/")
    assert "< HTTP/1.1 417 Expectation Failed" in r.stderr
    assert "100 Continue" not in r.stderr
    assert json.loads(r.stdout)["message"] == "invalid token"
    # On the wire: the 417 comes right after the head, no body sent.
    c = Conn(dev.web)
    c.send(b"POST /files/ HTTP/1.1\r\nHost: d\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n"
           b"Content-Type: multipart/form-data; boundary=q\r\n\r\n")
    r = c.read_response()
    assert r.status == 417
    c.close()
    # Without Expect: 401 and the challenge.
    r = request(dev.web, "POST", "/files/", form(b"q", [file_part(b"a.bin", b"x")]),
                {"Content-Type": "multipart/form-data; boundary=q"})
    assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert dev.files() == []


@pytest.mark.parametrize("filename", [b".hidden", b"../up.bin", b"a/b.bin", b"", b"n" * 65])
def test_bad_filename_is_400_and_nothing_stored(dev, filename):
    body = form(b"q", [file_part(filename, os.urandom(20000))])
    r = request(dev.web, "POST", "/files/", body, {"Authorization": AUTH,
                                                   "Content-Type": "multipart/form-data; boundary=q"})
    assert r.status == 400 and r.json()["error"] == "bad_name", r
    assert dev.files() == []
    assert status_ok(dev)


@pytest.mark.parametrize("why,body,message", [
    ("two files", form(b"q", [file_part(b"a.bin", b"1"), file_part(b"b.bin", b"2")]), "one file part"),
    ("no file", form(b"q", [field_part(b"a", b"1")]), "no file part"),
    ("no close delimiter", b"--q\r\nContent-Disposition: form-data; name=f; filename=a.bin\r\n\r\nabc\r\n",
     "close delimiter"),
    ("a field too large", form(b"q", [field_part(b"a", b"v" * 5000), file_part(b"a.bin", b"1")]),
     "POSTERN_FORM_FIELD_MAX"),
    ("a part without Content-Disposition", b"--q\r\nContent-Type: text/plain\r\n\r\nx\r\n--q--", "Content-Disposition"),
])
def test_malformed_forms_are_400_and_nothing_stored(dev, why, body, message):
    r = request(dev.web, "POST", "/files/", body, {"Authorization": AUTH,
                                                   "Content-Type": "multipart/form-data; boundary=q"})
    assert r.status == 400 and message in r.json()["message"], (why, r)
    assert dev.files() == []


def test_body_cut_short_stores_nothing_and_the_device_still_serves(dev):
    content = os.urandom(100000)
    body = form(b"q", [file_part(b"cut.bin", content)])
    c = Conn(dev.web)
    c.send(("POST /files/ HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nContent-Length: %d\r\n"
            "Content-Type: multipart/form-data; boundary=q\r\n\r\n" % (AUTH, len(body))).encode())
    c.send(body[:60000])
    time.sleep(0.5)
    c.close()
    time.sleep(0.5)
    assert dev.files() == []
    assert status_ok(dev)
    r = request(dev.web, "POST", "/files/", body, {"Authorization": AUTH,
                                                   "Content-Type": "multipart/form-data; boundary=q"})
    assert r.status == 201
    assert dev.read_file("cut.bin") == content


def test_other_types_415_bad_boundary_400_post_elsewhere_405(dev):
    h = {"Authorization": AUTH}
    r = request(dev.web, "POST", "/files/", b"data", dict(h, **{"Content-Type": "application/octet-stream"}))
    assert r.status == 415 and r.json()["error"] == "unsupported_media_type"
    r = request(dev.web, "POST", "/files/", b"data", h)
    assert r.status == 415
    for ctype in ("multipart/form-data", "multipart/form-data; boundary=" + "b" * 71,
                  'multipart/form-data; boundary="ends in space "'):
        r = request(dev.web, "POST", "/files/", b"data", dict(h, **{"Content-Type": ctype}))
        assert r.status == 400 and "boundary" in r.json()["message"], ctype
    r = request(dev.web, "POST", "/files/x.bin", b"data",
                dict(h, **{"Content-Type": "multipart/form-data; boundary=q"}))
    assert r.status == 405 and r.headers["allow"] == "GET, HEAD, PUT, DELETE"
    r = request(dev.web, "PUT", "/files/", b"data", h)
    assert r.status == 405 and r.headers["allow"] == "GET, HEAD, POST"
    assert dev.files() == []


def test_content_digest_is_the_whole_forms(dev):
    content = os.urandom(30000)
    body = form(b"q", [file_part(b"d.bin", content)])
    h = {"Authorization": AUTH, "Content-Type": "multipart/form-data; boundary=q"}
    wrong = "sha-256=:%s:" % base64.b64encode(hashlib.sha256(content).digest()).decode()  # the file's, not the form's
    r = request(dev.web, "POST", "/files/", body, dict(h, **{"Content-Digest": wrong}))
    assert r.status == 400 and r.json()["error"] == "digest_mismatch"
    assert dev.files() == []
    right = "sha-256=:%s:" % base64.b64encode(hashlib.sha256(body).digest()).decode()
    r = request(dev.web, "POST", "/files/", body, dict(h, **{"Content-Digest": right}))
    assert r.status == 201 and r.json()["sha256"] == hashlib.sha256(content).hexdigest()
    assert dev.read_file("d.bin") == content


def test_storage_quota_while_streaming_is_413_and_nothing_stored(dev):
    capacity = request(dev.web, "GET", "/_status").json()["storage"]["capacity"]
    content = os.urandom(capacity + 100000)  # more than the device holds (an SD card's clusters may exceed 3 MiB)
    body = form(b"q", [file_part(b"big.bin", content)])
    c = Conn(dev.web, timeout=60)
    c.send(("POST /files/ HTTP/1.1\r\nHost: d\r\nAuthorization: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n"
            "Content-Type: multipart/form-data; boundary=q\r\n\r\n" % (AUTH, len(body))).encode())
    assert c.read_response().status == 100  # the length is the form's: the policy and the core take it as unknown
    try:
        c.send(body)
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = c.read_response(timeout=60)
    c.close()
    assert r.status == 413 and "quota" in r.json()["message"]
    assert dev.files() == []
    assert status_ok(dev)


# ---- The second decision: the policy sees the file's name ----------------------------

NAME_POLICY = """
function on_request(req)
  if req.method ~= "POST" then return true end
  if req.name == nil then
    -- the head: no name yet (it is in the body)
    if req.length ~= nil then return 500, "a form's length must be nil" end
    return true
  end
  if not req.name:match("%.bin$") then return 403, "only .bin files, not " .. req.name end
  if req.headers["x-step"] ~= "seen" then return 403, "headers missing at the second step" end
  if req.name == "latest.bin" then return {status = 100, name = "renamed.bin"} end
  return true
end
"""


@pytest.mark.targets("host", why="the decision is the core's, the same code on every board; a custom policy "
                                 "costs a board image per test")
def test_policy_decides_again_with_the_name(launch, tmp_path):
    pol = tmp_path / "names.lua"
    pol.write_text(NAME_POLICY)
    dev = launch({"token": TOKEN}, policy=str(pol))
    h = {"Content-Type": "multipart/form-data; boundary=q", "X-Step": "seen"}
    r = request(dev.web, "POST", "/files/", form(b"q", [file_part(b"notes.txt", os.urandom(50000))]), h)
    assert r.status == 403 and r.json()["message"] == "only .bin files, not notes.txt"
    assert dev.files() == []
    r = request(dev.web, "POST", "/files/", form(b"q", [file_part(b"latest.bin", b"new")]), h)
    assert r.status == 201 and r.json()["name"] == "renamed.bin"
    assert dev.files() == ["renamed.bin"]
    r = request(dev.web, "POST", "/files/", form(b"q", [file_part(b"a.bin", b"a")]), {"Content-Type": h["Content-Type"]})
    assert r.status == 403 and "headers missing" in r.json()["message"]
