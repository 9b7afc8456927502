"""test_decision.py: every client gets the decision: the retryable 417 and its retry on the same connection,
refused bodies drained so the answer survives, idle keep-alive connections giving their slot, and answers that
are always well-formed (policy statuses, Expect on bodiless requests, reservations, the listing, names)."""
import hashlib
import json
import os
import socket
import time

import pytest

from conftest import DEFAULT_TARGETS
from httpwire import Conn, request

TARGETS = DEFAULT_TARGETS + ("host-rtos", "lm3s")  # and in RTOS mode (NO_SYS=0), and on the SD card board

TOKEN = "dec1sion-T"
AUTH = "Bearer " + TOKEN
AUTH_LINE = ("Authorization: %s\r\n" % AUTH).encode()


@pytest.fixture
def dev(launch):
    return launch({"token": TOKEN, "capacity": "3M"})


def status_doc(dev):
    r = request(dev.web, "GET", "/_status")
    assert r.status == 200, r
    return r.json()




def log_lines(dev, mark, text):
    return [l for l in dev.lines[mark:] if text in l]


def ends_with_fin(c, wait=10.0):
    """Reads to the end of the connection: True for a FIN, False for a reset (what would cost a client its
    answer), AssertionError when nothing ends within `wait`."""
    c.sock.settimeout(wait)
    try:
        while c.sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return False
    except socket.timeout:
        raise AssertionError("the connection neither closed nor reset within %ss" % wait)
    except OSError as e:  # TLS: an unexpected EOF or a reset shows up as an SSL error
        return "reset" not in str(e).lower()


# ---- 1. The retryable 417 ------------------------------------------------------------------

RETRY_POLICY = """
-- Expect refusals only mean "send it again without Expect".
function on_request(req)
  if req.method == "GET" then return true end
  if req.expect then
    return {status = 417, message = "send the body without Expect", retry = true}
  end
  return true
end
"""


@pytest.fixture
def retry_dev(launch, tmp_path):
    pol = tmp_path / "retry.lua"
    pol.write_text(RETRY_POLICY)
    return launch({"capacity": "3M"}, policy=str(pol))


def put_head(name, length, expect=True, auth=b""):
    return (b"PUT /files/%s HTTP/1.1\r\nHost: d\r\n%sContent-Length: %d\r\n%s\r\n"
            % (name.encode(), auth, length, b"Expect: 100-continue\r\n" if expect else b""))


def test_retryable_417_keeps_the_connection_and_the_retry_on_it_is_served(retry_dev):
    dev = retry_dev
    body = os.urandom(200 * 1024)
    mark = dev.log_mark()
    c = Conn(dev.web)
    c.send(put_head("fw.bin", len(body)))
    r = c.read_response()
    assert r.status == 417 and "connection" not in r.headers, r
    assert r.json()["error"] == "expectation_failed"
    assert not c.closed_by_peer(1.0)  # open for the retry
    c.send(put_head("fw.bin", len(body), expect=False) + body)
    r = c.read_response(timeout=30)
    assert r.status == 201, r
    assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
    c.send(b"GET /files/fw.bin HTTP/1.1\r\nHost: d\r\n\r\n")  # and it goes on serving
    assert c.read_response(timeout=30).body == body
    c.close()
    dev.wait_for_log('"PUT /files/fw.bin HTTP/1.1" 201 %d' % len(body), start=mark)
    assert len(log_lines(dev, mark, '"PUT /files/fw.bin HTTP/1.1" 417 0')) == 1


@pytest.mark.parametrize("follow", ["body_sent_anyway", "another_target", "again_with_expect", "another_method"])
def test_after_a_retryable_417_anything_but_its_retry_gets_400_and_close(retry_dev, follow):
    dev = retry_dev
    # A body that is itself a valid request: it must never run as one.
    smuggled = b"PUT /files/smuggled.bin HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n\r\nhi"
    c = Conn(dev.web)
    c.send(put_head("fw.bin", len(smuggled)))
    assert c.read_response().status == 417
    dev.wait_for_log('"PUT /files/fw.bin HTTP/1.1" 417')  # a board's console may print it a little later
    mark = dev.log_mark()
    c.send({"body_sent_anyway": smuggled,
            "another_target": put_head("other.bin", 2, expect=False) + b"hi",
            "again_with_expect": put_head("fw.bin", 2),
            "another_method": b"GET /files/ HTTP/1.1\r\nHost: d\r\n\r\n"}[follow])
    r = c.read_response()
    assert r.status == 400 and r.headers.get("connection") == "close", r
    assert r.json()["error"] == "bad_request"
    assert c.closed_by_peer(5)
    c.close()
    assert not [l for l in dev.lines[mark:] if '"PUT' in l and " 400 " not in l]  # nothing else ran
    assert dev.files() == []


# ---- 2. A refusal every client can read -------------------------------------------------------

@pytest.mark.parametrize("chunked", [False, True], ids=["content_length", "chunked"])
def test_refused_body_is_drained_and_the_client_reads_the_answer_then_a_fin(dev, chunked):
    """A client that writes its whole body before it reads (Go, Node, undici) must still see the 403: the
    device drains the body instead of closing under it, which would reset the answer away."""
    body = os.urandom(4 * 1024 * 1024)
    for attempt in range(3):
        mark = dev.log_mark()
        c = Conn(dev.web, timeout=60)
        head = b"PUT /files/no.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer wrong\r\n"
        if chunked:
            step = 64 * 1024
            payload = b"".join(b"%x\r\n%s\r\n" % (step, body[i:i + step]) for i in range(0, len(body), step))
            c.send(head + b"Transfer-Encoding: chunked\r\n\r\n" + payload + b"0\r\n\r\n")
        else:
            c.send(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)  # every byte, before reading
        r = c.read_response(timeout=30)
        assert r.status == 403 and r.headers.get("connection") == "close", (attempt, r)
        assert r.json()["error"] == "forbidden"
        assert ends_with_fin(c), "attempt %d: the connection was reset" % attempt
        c.close()
        dev.wait_for_log('"PUT /files/no.bin HTTP/1.1" 403 0', start=mark)
    assert dev.files() == []
    assert status_doc(dev)["storage"]["free"] == status_doc(dev)["storage"]["capacity"]


# ---- 3. No lockout by idle connections ---------------------------------------------------------

def test_idle_keepalive_connections_give_their_slot_oldest_first(dev):
    doc = status_doc(dev)
    # Over HTTPS the TLS sessions, fewer than the connection slots, are what runs out first.
    slots = doc["tls"]["max"] if dev.web.tls else doc["connections"]["max"]
    idle = []
    for i in range(slots):
        c = Conn(dev.web)
        c.send(b"GET /_status HTTP/1.1\r\nHost: d\r\n\r\n")
        assert c.read_response().status == 200
        idle.append(c)
        time.sleep(0.05)  # distinct ages
    # Every slot is held by an idle keep-alive connection: new clients are still served, and stay.
    newer = []
    for n in range(min(2, slots)):
        c = Conn(dev.web)
        c.send(b"GET /_status HTTP/1.1\r\nHost: d\r\n\r\n")
        assert c.read_response().status == 200
        newer.append(c)
        assert idle[n].closed_by_peer(3)  # the oldest idle one gave its slot
    for c in idle[len(newer):] + newer:  # the others were kept, and still serve
        c.send(b"GET /_status HTTP/1.1\r\nHost: d\r\n\r\n")
        assert c.read_response().status == 200
    for c in idle + newer:
        c.close()


# ---- 4. Answers that are right ------------------------------------------------------------------

SUCCESS_POLICY = """
function on_request(req)
  if req.path == "/files/204.txt" then return 204 end
  if req.path == "/files/302.txt" then return {status = 302, message = "elsewhere"} end
  return true
end
function on_stored(req, info)
  if req.name == "made.txt" then return 201 end
  return true
end
"""


def test_a_policy_answering_2xx_or_3xx_fails_closed(launch, tmp_path):
    pol = tmp_path / "success.lua"
    pol.write_text(SUCCESS_POLICY)
    dev = launch({"capacity": "3M"}, policy=str(pol))
    c = Conn(dev.web)
    for path in ("/files/204.txt", "/files/302.txt"):
        c.send(b"GET %s HTTP/1.1\r\nHost: d\r\n\r\n" % path.encode())
        r = c.read_response()
        assert r.status == 500 and r.json()["error"] == "policy_error", r
    c.send(b"GET /_status HTTP/1.1\r\nHost: d\r\n\r\n")  # the keep-alive stream is still in step
    assert c.read_response().status == 200
    c.close()
    r = request(dev.web, "PUT", "/files/made.txt", b"hello")
    assert r.status == 500 and r.json()["error"] == "policy_error", r
    assert dev.read_file("made.txt") is None  # nothing stored


@pytest.mark.parametrize("expect", ["100-continue", "something-else"])
def test_expect_on_a_request_without_body_gets_its_precise_status(dev, expect):
    r = request(dev.web, "GET", "/files/", None, {"Expect": expect})
    assert r.status == 401, r
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = request(dev.web, "GET", "/files/", None, {"Expect": expect, "Authorization": AUTH})
    assert r.status == 200 and r.json() == {"files": []}, r


@pytest.mark.targets("host", "host-https", "mps2", why="the board has one TLS session: the second upload would wait")
def test_100_continue_reserves_the_announced_length(launch):
    dev = launch({"token": TOKEN, "capacity": "1M"})
    length = 629145  # 60 % of the capacity: two cannot both fit
    body = os.urandom(length)
    first = Conn(dev.web, timeout=30)
    first.send(put_head("a.bin", length, auth=AUTH_LINE))
    assert first.read_response().status == 100
    # The first body has not come yet; its length is already spoken for.
    assert status_doc(dev)["storage"]["free"] < 1024 * 1024 - length + 4096
    second = Conn(dev.web, timeout=30)
    second.send(put_head("b.bin", length, auth=AUTH_LINE))
    r = second.read_response()
    assert r.status == 417, r  # no 100: the client keeps its body
    second.close()
    first.send(body)
    r = first.read_response(timeout=60)
    assert r.status == 201, r
    first.close()
    assert dev.read_file("a.bin") == body and dev.read_file("b.bin") is None


def test_the_listing_returns_every_file_as_valid_json(dev):
    # More entries than one render buffer holds (the board's flash index holds 64 names; the lm3s6965evb's
    # SD store 8 files, its RAM: a listing of them still crosses TCP segments with the long names).
    count = 200 if dev.board == "host" else 5 if dev.board == "lm3s" else 60
    names = ["f%03d.txt" % i for i in range(count)] + ['quo"te.txt', "caf\u00e9.txt", "\u00fcber \u20ac.bin"]
    c = Conn(dev.web, timeout=30)
    for name in names:
        path = "".join(ch if ch.isascii() and ch.isalnum() or ch in "._" else
                       "".join("%%%02X" % b for b in ch.encode()) for ch in name)
        c.send(b"PUT /files/%s HTTP/1.1\r\nHost: d\r\n%sContent-Length: 1\r\n\r\nx" % (path.encode(), AUTH_LINE))
        r = c.read_response()
        assert r.status == 201, (name, r)
        assert r.json()["name"] == name
    c.send(b"GET /files/ HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"\r\n")
    r = c.read_response(timeout=30)
    c.close()
    listed = [f["name"] for f in json.loads(r.body.decode("utf-8"))["files"]]
    assert listed == sorted(names, key=lambda n: n.encode()), listed[-5:]


@pytest.mark.parametrize("name", ["edge-%FF%FE.bin", "%C0%AF.bin", "half-%E2%82.bin", "%ED%A0%80.bin"])
def test_a_name_that_is_not_utf8_is_refused(dev, name):
    r = request(dev.web, "PUT", "/files/" + name, b"x", {"Authorization": AUTH})
    assert r.status == 400 and r.json()["error"] == "bad_name", r
    r = request(dev.web, "GET", "/files/", None, {"Authorization": AUTH})
    assert r.json() == {"files": []}


@pytest.mark.parametrize("scheme", ["HTTP", "Http", "hTTp"])
def test_the_scheme_of_an_absolute_target_is_case_insensitive(dev, scheme):
    r = request(dev.web, "GET", "%s://device/_status" % scheme)
    assert r.status == 200, r
    assert "storage" in r.json()


@pytest.mark.targets("host", "host-https", why="only the host's storage is a folder a file can be put into by hand")
def test_a_file_put_by_hand_under_a_name_that_is_not_utf8_still_lists_as_valid_json(dev):
    with open(os.path.join(dev.storage.encode(), b"by-hand-\xff\xfe.bin"), "wb") as f:
        f.write(b"x" * 3)
    r = request(dev.web, "GET", "/files/", None, {"Authorization": AUTH})
    assert r.status == 200
    assert r.json() == {"files": [{"name": "by-hand-\ufffd\ufffd.bin", "size": 3}]}
