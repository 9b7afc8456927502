"""test_policy_replace.py: PUT /_policy replaces the running policy, decided by the running one before its body
is read; a script that does not load, lacks on_request, fails its self_test or exhausts the arena is refused with
422 and changes nothing; GET /_policy tells which runs; on the host the accepted one is stored for the next boot.
GET and PUT /_config read (secrets left out) and replace the settings, checked the same way."""
import hashlib
import os

import pytest

from conftest import Endpoint
from httpwire import Conn, request

TOKEN = "rep1ace-T"
AUTH = {"Authorization": "Bearer " + TOKEN}
AUTH_LINE = ("Authorization: Bearer %s\r\n" % TOKEN).encode()

# The replacement: the token still opens everything, and names ending in ".no" are refused, which the default
# policy never does (it answers 404 for a missing file).
NEW_POLICY = b"""
local token = config.token
function on_request(req)
  if req.method == "GET" and req.path == "/_status" then return true end
  if not (token and auth.equal(auth.bearer(req.headers.authorization) or "", token)) then
    return {status = req.expect and 417 or 403, message = "the new policy wants the token"}
  end
  if req.name and req.name:match("%.no$") then return 403, "the new policy says no" end
  return true
end
function self_test()
  return on_request({method = "GET", path = "/_status", headers = {}}) == true
end
"""

SYNTAX_ERROR = b"function on_request(req)\n  return true\nend\nlocal x = = 1\n"
NO_ON_REQUEST = b"function on_requests(req) return true end\n"
SELF_TEST_ERROR = b"function on_request(req) return true end\nfunction self_test()\n  local t = nil\n  return t.x\nend\n"
SELF_TEST_FALSE = b"function on_request(req) return true end\nfunction self_test() return false, 'no good' end\n"
ARENA_HOG = b"local t = {}\nfor i = 1, 1e6 do t[i] = string.rep('x', 64) .. i end\nfunction on_request(req) return true end\n"


@pytest.fixture
def dev(launch):
    return launch({"token": TOKEN, "capacity": "1M"})


def put_policy(where, source, headers=AUTH, timeout=30):
    return request(where, "PUT", "/_policy", source, headers, timeout=timeout)


def running(dev):
    r = request(dev.web, "GET", "/_policy", None, AUTH)
    assert r.status == 200, r
    return r.json()


def old_policy_decides(dev):
    """The default policy still runs: no token, 401; a missing file with it, 404 (the new one would say 403)."""
    assert request(dev.web, "GET", "/files/x.no").status == 401
    r = request(dev.web, "GET", "/files/x.no", None, AUTH)
    assert r.status == 404, r


def test_a_replacement_takes_effect_for_the_next_request(dev):
    before = running(dev)
    assert before["name"] == "policy.lua" and len(before["sha256"]) == 64
    old_policy_decides(dev)
    # On one keep-alive connection (a board has one TLS session): the old policy, the replacement, the new one.
    c = Conn(dev.web)
    c.send(b"GET /files/x.no HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"\r\n")
    assert c.read_response().status == 404
    mark = dev.log_mark()
    c.send(b"PUT /_policy HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"Content-Length: %d\r\n\r\n" % len(NEW_POLICY)
           + NEW_POLICY)
    r = c.read_response(timeout=30)
    assert r.status == 200, r
    doc = r.json()
    assert doc["sha256"] == hashlib.sha256(NEW_POLICY).hexdigest() and doc["bytes"] == len(NEW_POLICY)
    dev.wait_for_log("policy: replaced by %d bytes" % len(NEW_POLICY), start=mark)
    c.send(b"GET /files/x.no HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"\r\n")
    r = c.read_response()
    assert r.status == 403 and r.json()["message"] == "the new policy says no", r
    c.close()
    assert running(dev)["sha256"] == doc["sha256"]
    r = request(dev.web, "GET", "/_policy?source", None, AUTH)
    assert r.status == 200 and r.body == NEW_POLICY, r
    assert request(dev.web, "GET", "/_policy?source").status == 403  # the new policy decides that too


def test_without_the_token_a_replacement_is_refused_before_its_body(dev):
    for headers, status in ((None, 401), ({"Authorization": "Bearer wrong"}, 403)):
        r = put_policy(dev.web, NEW_POLICY, headers)
        assert r.status == status, r
    c = Conn(dev.web)  # with Expect: no 100, the body stays with the client
    c.send(b"PUT /_policy HTTP/1.1\r\nHost: d\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(NEW_POLICY))
    r = c.read_response()
    assert r.status == 417, r
    c.close()
    assert request(dev.web, "GET", "/_policy").status == 401
    old_policy_decides(dev)


def test_with_expect_the_decision_comes_before_the_body(dev):
    c = Conn(dev.web, timeout=30)
    c.send(b"PUT /_policy HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE +
           b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(NEW_POLICY))
    assert c.read_response().status == 100
    c.send(NEW_POLICY)
    r = c.read_response(timeout=30)
    assert r.status == 200, r
    c.close()
    r = request(dev.web, "GET", "/files/x.no", None, AUTH)
    assert r.status == 403, r


@pytest.mark.parametrize("source,words", [
    (SYNTAX_ERROR, ["_policy:4:", "near '='"]),
    (NO_ON_REQUEST, ["on_request"]),
    (SELF_TEST_ERROR, ["_policy:4:", "index a nil value"]),
    (SELF_TEST_FALSE, ["_policy:2:", "self_test failed", "no good"]),
    (ARENA_HOG, ["out of memory"]),
], ids=["syntax", "no_on_request", "self_test_error", "self_test_false", "arena"])
def test_a_script_that_does_not_load_is_refused_with_422_and_the_old_policy_still_decides(dev, source, words):
    before = running(dev)
    mark = dev.log_mark()
    r = put_policy(dev.web, source)
    assert r.status == 422, r
    doc = r.json()
    assert doc["error"] == "policy_invalid" and all(w in doc["message"] for w in words), doc
    line = dev.wait_for_log("policy: replacement refused:", start=mark)
    assert doc["message"] in line
    assert running(dev) == before
    old_policy_decides(dev)
    r = put_policy(dev.web, NEW_POLICY)  # and it can still be replaced
    assert r.status == 200, r


def test_a_policy_larger_than_its_buffer_gets_413(dev):
    room = running(dev)["room"]
    r = put_policy(dev.web, b"-- " + b"x" * room + b"\nfunction on_request() return true end\n")
    assert r.status == 413, r
    c = Conn(dev.web, timeout=30)  # chunked: refused as it streams past the buffer
    chunk = b"-- " + b"x" * 1021 + b"\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(room // len(chunk) + 2)) + b"0\r\n\r\n"
    c.send(b"PUT /_policy HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    r = c.read_response(timeout=30)
    assert r.status == 413, r
    c.close()
    old_policy_decides(dev)


def test_an_upload_in_progress_finishes_under_the_decision_it_had(dev):
    body = os.urandom(256 * 1024)
    up = Conn(dev.web, timeout=60)
    up.send(b"PUT /files/big.no HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE +
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    assert up.read_response().status == 100  # decided by the old policy: accepted
    up.send(body[:len(body) // 2])
    # The replacement goes over plain HTTP: a board has one TLS session, which the upload holds.
    r = put_policy(Endpoint(dev.device.http, False), NEW_POLICY)
    assert r.status == 200, r
    up.send(body[len(body) // 2:])
    r = up.read_response(timeout=60)
    assert r.status == 201 and r.json()["sha256"] == hashlib.sha256(body).hexdigest(), r
    up.close()
    assert "big.no" in dev.files()  # stored (the new policy would not let it be read back)
    r = request(dev.web, "PUT", "/files/other.no", b"x", AUTH)  # the next upload has the new decision
    assert r.status == 403, r


# ---- Stored, and never bricked (the host keeps it in its storage folder) -----------------------------

@pytest.mark.targets("host", why="only the host stores a replaced policy (a board keeps it in RAM until reset)")
def test_the_accepted_policy_is_stored_and_runs_after_a_restart(launch, target, tmp_path):
    storage = str(tmp_path / "keep")
    dev = launch({"token": TOKEN}, storage=storage)
    assert put_policy(dev.web, NEW_POLICY).status == 200
    assert dev.files() == [] and request(dev.web, "GET", "/files/", None, AUTH).json() == {"files": []}
    assert open(os.path.join(storage, ".policy.lua"), "rb").read() == NEW_POLICY
    dev.stop()
    dev = launch({"token": TOKEN}, storage=storage)
    dev.wait_for_log("postern: running the stored policy")
    assert running(dev)["sha256"] == hashlib.sha256(NEW_POLICY).hexdigest()
    assert request(dev.web, "GET", "/files/x.no", None, AUTH).status == 403


@pytest.mark.targets("host", why="only the host stores a replaced policy (a board keeps it in RAM until reset)")
def test_a_corrupted_stored_policy_falls_back_to_the_previous_then_the_built_in(launch, target, tmp_path):
    storage = str(tmp_path / "keep")
    dev = launch({"token": TOKEN}, storage=storage)
    assert put_policy(dev.web, NEW_POLICY).status == 200
    assert put_policy(dev.web, NEW_POLICY + b"-- second\n").status == 200
    dev.stop()
    with open(os.path.join(storage, ".policy.lua"), "wb") as f:
        f.write(b"function on_request(req\n")  # cut short
    dev = launch({"token": TOKEN}, storage=storage)
    dev.wait_for_log("postern: the stored policy %s/.policy.lua did not load; falling back" % storage)
    dev.wait_for_log("postern: %s/.policy.lua moved aside as .policy.bad.lua" % storage)
    dev.wait_for_log("postern: running the stored policy %s/.policy.prev.lua" % storage)
    assert running(dev)["sha256"] == hashlib.sha256(NEW_POLICY).hexdigest()
    assert open(os.path.join(storage, ".policy.bad.lua"), "rb").read() == b"function on_request(req\n"
    assert not os.path.exists(os.path.join(storage, ".policy.lua"))
    dev.stop()
    with open(os.path.join(storage, ".policy.prev.lua"), "wb") as f:
        f.write(b"return 1\n")  # no on_request
    dev = launch({"token": TOKEN}, storage=storage)
    dev.wait_for_log("postern: running the built-in policy")
    assert running(dev)["name"] == "policy.lua"
    old_policy_decides(dev)
    # A new replacement is stored; the broken ones never become its fallback.
    assert put_policy(dev.web, NEW_POLICY).status == 200
    assert open(os.path.join(storage, ".policy.lua"), "rb").read() == NEW_POLICY
    assert not os.path.exists(os.path.join(storage, ".policy.prev.lua"))
    assert dev.files() == []


# ---- Settings at run time (PUT /_config) ----------------------------------------------------------

def config(dev, headers=AUTH):
    r = request(dev.web, "GET", "/_config", None, headers)
    assert r.status == 200, r
    return r.json()


@pytest.mark.targets("host", "host-https", why="the mps2-an385 image leaves /_config out (POSTERN_CONFIG_ROUTE 0, the flash budget)")
def test_settings_are_read_without_the_secret_and_replaced_for_the_next_request(launch):
    dev = launch({"token": TOKEN, "capacity": "1M", "site": "north"})
    assert config(dev) == {"site": "north"}  # the token is secret by default
    assert request(dev.web, "GET", "/_config").status == 401
    r = request(dev.web, "PUT", "/_config", b'{"token": "other-T", "site": "s\\u00fcd \\"2\\""}', AUTH, timeout=30)
    assert r.status == 200 and r.json()["settings"] == 2, r
    assert request(dev.web, "GET", "/files/", None, AUTH).status == 403  # the old token is gone
    other = {"Authorization": "Bearer other-T"}
    assert config(dev, other) == {"site": "s\u00fcd \"2\""}


@pytest.mark.targets("host", "host-https", why="the mps2-an385 image leaves /_config out (POSTERN_CONFIG_ROUTE 0, the flash budget)")
@pytest.mark.parametrize("body,status,words", [
    (b'{"token": "T2",}', 400, "name"),
    (b'["token", "T2"]', 400, "JSON object"),
    (b'{"token": 2}', 400, "value"),
    (b'{"bad name": "x", "token": "T2"}', 400, "setting names"),
    (b'{"site": "no token"}', 422, "no token configured"),  # the default policy's self_test
], ids=["trailing_comma", "array", "number", "name", "self_test"])
def test_settings_that_are_malformed_or_refused_change_nothing(dev, body, status, words):
    r = request(dev.web, "PUT", "/_config", body, AUTH, timeout=30)
    assert r.status == status, r
    assert words in r.json()["message"], r
    assert r.json()["error"] == ("config_invalid" if status == 400 else "policy_invalid")
    old_policy_decides(dev)


SECRET_POLICY = b"""
secret_settings = {"password"}
function on_request(req) return true end
"""


@pytest.mark.targets("host", "host-https", why="the mps2-an385 image leaves /_config out (POSTERN_CONFIG_ROUTE 0, the flash budget)")
def test_a_policy_marks_its_own_secrets(launch, tmp_path):
    pol = tmp_path / "secret.lua"
    pol.write_bytes(SECRET_POLICY)
    dev = launch({"token": "shown", "password": "hidden"}, policy=str(pol))
    assert config(dev) == {"token": "shown"}


@pytest.mark.targets("host", why="only the host stores settings (a board keeps them in RAM until reset)")
def test_settings_are_stored_and_used_after_a_restart(launch, target, tmp_path):
    storage = str(tmp_path / "keep")
    dev = launch({"token": TOKEN}, storage=storage)
    r = request(dev.web, "PUT", "/_config", b'{"token": "kept-T", "site": "east"}', AUTH, timeout=30)
    assert r.status == 200 and r.json()["stored"] is True, r
    dev.stop()
    dev = launch({"token": TOKEN}, storage=storage)
    dev.wait_for_log("postern: 2 settings from the stored")
    assert request(dev.web, "GET", "/files/", None, AUTH).status == 403
    assert config(dev, {"Authorization": "Bearer kept-T"}) == {"site": "east"}
