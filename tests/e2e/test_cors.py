"""test_cors.py: CORS as the policy decides: OPTIONS preflights allowed or refused (scripts/examples/cors.lua with
--set cors_origin=...; the default policy allows no origin), Access-Control-Allow-Origin on successes and refusals
alike, and CORS answers a policy gets wrong failing closed."""
import hashlib
import os

import pytest

from conftest import ROOT
from httpwire import request

TOKEN = "c0rs-T"
ORIGIN = "http://dash.example:8000"
CORS_POLICY = os.path.join(ROOT, "scripts", "examples", "cors.lua")
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT",
             "Access-Control-Request-Headers": "authorization,content-digest"}


@pytest.fixture
def dev(launch):
    return launch({"token": TOKEN, "capacity": "3M", "cors_origin": ORIGIN}, policy=CORS_POLICY)


def cors_fields(r):
    return {k: v for k, v in r.headers.items() if k.startswith("access-control-")}


def test_a_preflight_from_the_allowed_origin_gets_204_with_what_it_may_do(dev):
    r = request(dev.web, "OPTIONS", "/files/fw.bin", None, PREFLIGHT)
    assert r.status == 204 and r.body == b"", r
    assert r.headers["access-control-allow-origin"] == ORIGIN
    methods = [m.strip() for m in r.headers["access-control-allow-methods"].split(",")]
    assert {"PUT", "GET", "DELETE", "POST"} <= set(methods)
    headers = [h.strip() for h in r.headers["access-control-allow-headers"].split(",")]
    assert {"authorization", "content-type", "content-digest"} <= set(headers)
    assert r.headers["access-control-max-age"] == "600"
    assert "Vary: Origin" in r.raw_head.decode()
    assert "content-length" not in r.headers  # 204
    assert dev.files() == []


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"},
    {"Origin": ORIGIN + "/", "Access-Control-Request-Method": "PUT"},
    {"Origin": ORIGIN, "Access-Control-Request-Method": "PATCH"},
    {"Origin": ORIGIN},
], ids=["another origin", "not the exact origin", "a method not served", "no method"])
def test_a_refused_preflight_gets_a_final_status_without_cors_fields(dev, headers):
    r = request(dev.web, "OPTIONS", "/files/fw.bin", None, headers)
    assert r.status == 403, r
    assert cors_fields(r) == {}, r
    assert r.json() == {"error": "forbidden", "message": "this origin may not use the device"}


def test_the_default_policy_allows_no_origin(launch):
    dev = launch({"token": TOKEN, "capacity": "3M"})
    r = request(dev.web, "OPTIONS", "/files/fw.bin", None, PREFLIGHT)
    assert r.status == 401 and cors_fields(r) == {}, r  # a preflight never carries the token
    r = request(dev.web, "GET", "/files/", None, {"Origin": ORIGIN, "Authorization": "Bearer " + TOKEN})
    assert r.status == 200 and cors_fields(r) == {}, r


def test_the_example_without_cors_origin_allows_no_origin(launch):
    dev = launch({"token": TOKEN, "capacity": "3M"}, policy=CORS_POLICY)
    r = request(dev.web, "OPTIONS", "/files/fw.bin", None, PREFLIGHT)
    assert r.status == 403 and cors_fields(r) == {}, r
    r = request(dev.web, "GET", "/files/", None, {"Origin": ORIGIN, "Authorization": "Bearer " + TOKEN})
    assert r.status == 200 and cors_fields(r) == {}, r


def test_the_allowed_origin_reads_successes_and_refusals(dev):
    body = b"x" * 1000
    # A refusal: the page on that origin can read the policy's message.
    r = request(dev.web, "PUT", "/files/fw.bin", body, {"Origin": ORIGIN, "Authorization": "Bearer nope"})
    assert r.status == 403 and r.json()["message"] == "invalid token", r
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "Repr-Digest" in r.headers["access-control-expose-headers"]
    assert "ETag" in r.headers["access-control-expose-headers"]
    # Another origin gets the same refusal, unreadable to its page.
    r = request(dev.web, "PUT", "/files/fw.bin", body, {"Origin": "http://evil.example", "Authorization": "Bearer nope"})
    assert r.status == 403 and cors_fields(r) == {}, r
    assert dev.files() == []
    # A success, with its Repr-Digest exposed to the page.
    r = request(dev.web, "PUT", "/files/fw.bin", body, {"Origin": ORIGIN, "Authorization": "Bearer " + TOKEN})
    assert r.status == 201, r
    assert r.headers["access-control-allow-origin"] == ORIGIN and "repr-digest" in r.headers
    assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
    r = request(dev.web, "GET", "/files/fw.bin", None, {"Origin": ORIGIN, "Authorization": "Bearer " + TOKEN})
    assert r.status == 200 and r.body == body and r.headers["access-control-allow-origin"] == ORIGIN
    # Without an Origin (curl, a device), no CORS fields at all.
    r = request(dev.web, "GET", "/files/", None, {"Authorization": "Bearer " + TOKEN})
    assert r.status == 200 and cors_fields(r) == {}, r


BAD_ANSWERS = [
    ('{status = 100, allow_origin = "http://dash.example\\r\\nSet-Cookie: a=b"}', "allow_origin"),
    ('{status = 100, allow_origin = "http://dash.example/path"}', "allow_origin"),
    ('{status = 100, allow_origin = "dash.example"}', "allow_origin"),
    ('{status = 100, allow_origin = 42}', "allow_origin"),
    ('{status = 100, allow_origin = "*", allow_methods = "PUT GET"}', "allow_methods"),
    ('{status = 100, allow_origin = "*", allow_headers = "x-a, (b)"}', "allow_headers"),
    ('{status = 100, allow_origin = "*", max_age = -1}', "max_age"),
    ('{status = 100, allow_origin = "*", max_age = 1.5}', "max_age"),
]


@pytest.fixture
def bad_dev(launch, tmp_path):
    # One device whose policy answers the case the request's query names.
    cases = "\n".join("  [%d] = %s," % (i, a) for i, (a, _) in enumerate(BAD_ANSWERS))
    policy = tmp_path / "cors_bad.lua"
    policy.write_text("local answers = {\n%s\n}\n" % cases +
                      "function on_request(req)\n"
                      "  if req.query == nil then return {status = 100, allow_origin = \"*\"} end\n"
                      "  return answers[tonumber(req.query)]\n"
                      "end\n")
    return launch({"capacity": "3M"}, policy=str(policy))


def test_cors_answers_a_policy_gets_wrong_fail_closed(bad_dev):
    r = request(bad_dev.web, "GET", "/_status", None, {"Origin": ORIGIN})
    assert r.status == 200 and r.headers["access-control-allow-origin"] == "*", r
    for i, (answer, field) in enumerate(BAD_ANSWERS):
        mark = bad_dev.log_mark()
        for method in ("GET", "OPTIONS"):
            r = request(bad_dev.web, method, "/_status?%d" % i, None, {"Origin": ORIGIN})
            assert r.status == 500 and r.json()["error"] == "policy_error", (answer, r)
            assert cors_fields(r) == {} and b"Set-Cookie" not in r.raw_head, (answer, r)
        assert bad_dev.wait_for_log("invalid " + field, start=mark), answer
