"""test_hostile.py: hostile input over the wire: strict parsing, timeouts, a full pool, power loss, a full
flash and a bounded soak. Every case: the exact status, the JSON error shape, whether the connection closes,
and that the device still answers GET /_status afterwards. Only 127.0.0.1 is ever contacted."""
import hashlib
import os
import re
import select
import time

import pytest

from conftest import wait_until
from httpwire import Conn, request

TOKEN = "h0stile-T"
AUTH = "Bearer " + TOKEN
AUTH_LINE = ("Authorization: %s\r\n" % AUTH).encode()
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
TARGETS = ("host", "mps2", "host-rtos", "lm3s")  # plain HTTP; test_upload.py covers TLS


# ---- helpers -------------------------------------------------------------------------

def status_doc(dev):
    r = request(dev.web, "GET", "/_status")
    assert r.status == 200, r
    return r.json()


def assert_serving(dev):
    """The device still answers a plain GET /_status on a fresh connection."""
    doc = status_doc(dev)
    assert "storage" in doc and "connections" in doc


def assert_json_error(r, status, key=None):
    assert r.status == status, r
    assert r.headers.get("content-type") == "application/json", r
    doc = r.json()
    assert set(doc) == {"error", "message"}, doc
    assert isinstance(doc["error"], str) and SNAKE.match(doc["error"]), doc
    assert isinstance(doc["message"], str) and doc["message"], doc
    if key is not None:
        assert doc["error"] == key, doc
    return doc


def visible_files(dev):
    return dev.files()


def temp_files(dev):
    """Unfinished uploads' temporary files: the host's folder shows them; a board's flash does not."""
    if dev.storage is None:
        return []
    return sorted(n for n in os.listdir(dev.storage) if n.startswith(".upload-"))


def upload_in_progress(dev):
    """True while an upload holds storage (nothing committed): the free space is below the capacity."""
    st = status_doc(dev)["storage"]
    return st["free"] < st["capacity"]


def assert_nothing_left(dev):
    """No file, no unfinished upload, every byte of the storage free again."""
    assert visible_files(dev) == [] and temp_files(dev) == []
    st = status_doc(dev)["storage"]
    assert st["free"] == st["capacity"], st




@pytest.fixture
def dev(launch):
    return launch({"token": TOKEN, "capacity": "3M"})


# ---- 1. Parser strictness over the wire ---------------------------------------------------

H = b"Host: d\r\n"
PUT_CH = b"PUT /files/ch.bin HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"Transfer-Encoding: chunked\r\n\r\n"

# (id, bytes sent, status, error key, connection closes)
STRICT = [
    ("cl_and_te", b"PUT /files/a HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE +
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, "bad_request", True),
    ("two_cl", b"PUT /files/a HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE +
     b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, "bad_request", True),
    ("te_gzip_chunked", b"PUT /files/a HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE +
     b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "not_implemented", True),
    ("te_chunked_gzip", b"PUT /files/a HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE +
     b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400, "bad_request", True),
    ("chunk_size_overflow", PUT_CH + b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n", 400, "bad_request", True),
    ("chunk_ext_too_long", PUT_CH + b"5;" + b"e" * 70 + b"\r\nhello\r\n0\r\n\r\n", 400, "bad_request", True),
    ("space_before_colon", b"GET /_status HTTP/1.1\r\nHost : d\r\n\r\n", 400, "bad_request", True),
    ("obs_fold", b"GET /_status HTTP/1.1\r\nHost: d\r\nX-A: b\r\n  folded\r\n\r\n", 400, "bad_request", True),
    ("bare_cr", b"GET /_status HTTP/1.1\r\nHost: d\r\nX-A: b\rc\r\n\r\n", 400, "bad_request", True),
    ("bare_lf", b"GET /_status HTTP/1.1\nHost: d\n\n", 400, "bad_request", True),
    ("nul_in_value", b"GET /_status HTTP/1.1\r\nHost: d\r\nX-A: b\x00c\r\n\r\n", 400, "bad_request", True),
    ("method_too_long", b"ABCDEFGHIJKLMNOPQRS /_status HTTP/1.1\r\nHost: d\r\n\r\n", 501, "not_implemented", True),
    ("target_too_long", b"GET /" + b"a" * 600 + b" HTTP/1.1\r\nHost: d\r\n\r\n", 414, "uri_too_long", True),
    ("head_over_2k", b"GET /_status HTTP/1.1\r\nHost: d\r\nX-Big: " + b"a" * 2100 + b"\r\n\r\n",
     431, "header_too_large", True),
    ("25_fields", b"GET /_status HTTP/1.1\r\nHost: d\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(24)) + b"\r\n",
     431, "header_too_large", True),
    ("bad_pct", b"GET /files/%zz HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"\r\n", 400, "bad_request", True),
    # Asterisk-form is refused while the target is parsed, before any routing: 400 (not 405).
    ("options_asterisk", b"OPTIONS * HTTP/1.1\r\nHost: d\r\n\r\n", 400, "bad_request", True),
    ("http11_no_host", b"GET /_status HTTP/1.1\r\n\r\n", 400, "bad_request", True),
    ("host_with_space", b"GET /_status HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad_request", True),
    ("host_with_userinfo", b"GET /_status HTTP/1.1\r\nHost: user:pw@dev\r\n\r\n", 400, "bad_request", True),
    ("host_list", b"GET /_status HTTP/1.1\r\nHost: a, b\r\n\r\n", 400, "bad_request", True),
    ("http20", b"GET /_status HTTP/2.0\r\nHost: d\r\n\r\n", 505, "version_not_supported", True),
]


@pytest.mark.parametrize("raw,status,key,closes", [c[1:] for c in STRICT], ids=[c[0] for c in STRICT])
def test_parser_strictness_over_the_wire(dev, raw, status, key, closes):
    c = Conn(dev.web)
    try:
        c.send(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = c.read_response(timeout=5)
    assert_json_error(r, status, key)
    if closes:
        assert r.headers.get("connection") == "close", r
    assert c.closed_by_peer(3.0) == closes
    c.close()
    assert_nothing_left(dev)  # nothing stored, nothing left over
    assert_serving(dev)


def test_absolute_form_target_is_accepted(dev):
    c = Conn(dev.web)
    c.send(b"PUT http://device/files/abs.txt HTTP/1.1\r\nHost: device\r\n" + AUTH_LINE +
           b"Content-Length: 5\r\n\r\nhello")
    r = c.read_response()
    assert r.status == 201, r
    assert r.json()["name"] == "abs.txt" and r.json()["sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert "connection" not in r.headers
    assert not c.closed_by_peer(0.5)  # keep-alive: the connection stays open
    c.send(b"GET http://device/_status HTTP/1.1\r\nHost: device\r\n\r\n")
    assert c.read_response().status == 200
    c.close()
    assert dev.read_file("abs.txt") == b"hello"
    assert_serving(dev)


# ---- 2. Timeouts ------------------------------------------------------------------------------

@pytest.mark.targets("host", "mps2", "host-rtos", why="three connections at once: the lm3s6965evb has 2 connection slots")
def test_timeouts_head_body_and_idle_keepalive(dev):
    """All three run at once on one device (about 16 s in all): head 10 s from its first byte -> 408 and
    close; keep-alive idle 15 s -> silent close; a body below its minimum rate (1,000 bytes in the first
    10 s window, 8 KiB needed) -> 408 at the window's end, nothing stored."""
    t0 = time.monotonic()
    head = Conn(dev.web, timeout=30)
    head.send(b"GET /_status HTTP/1.1\r\nHost: d\r\n")  # never finished
    idle = Conn(dev.web, timeout=30)
    idle.send(b"GET /_status HTTP/1.1\r\nHost: d\r\n\r\n")
    assert idle.read_response().status == 200
    t_idle = time.monotonic()
    body = Conn(dev.web, timeout=30)
    body.send(b"PUT /files/slow.bin HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"Content-Length: 100000\r\n\r\n" +
              b"s" * 1000)
    t_body = time.monotonic()
    assert wait_until(lambda: upload_in_progress(dev), 5)

    r = head.read_response(timeout=14)
    dt = time.monotonic() - t0
    assert 9.0 <= dt <= 12.5, dt
    assert_json_error(r, 408, "request_timeout")
    assert r.headers["connection"] == "close"
    assert head.closed_by_peer(3)
    head.close()

    r = body.read_response(timeout=25 - (time.monotonic() - t_body))
    dt = time.monotonic() - t_body
    assert 9.0 <= dt <= 12.5, dt
    assert_json_error(r, 408, "request_timeout")
    assert r.headers["connection"] == "close"
    assert body.closed_by_peer(3)
    body.close()

    assert idle.closed_by_peer(20 - (time.monotonic() - t_idle))
    dt = time.monotonic() - t_idle
    assert 14.0 <= dt <= 17.5, dt
    assert idle.buf == b""  # silent: not one byte before the FIN
    idle.close()
    assert_nothing_left(dev)
    assert_serving(dev)


# ---- 3. Pool exhaustion ------------------------------------------------------------------------

def test_pool_exhaustion_quick_503_and_the_upload_goes_on(dev):
    data = os.urandom(2 * 1024 * 1024)
    up = Conn(dev.web, timeout=20)
    up.send(b"PUT /files/big.bin HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"Content-Length: %d\r\n\r\n" % len(data))
    half = len(data) // 2
    up.send(data[:half])
    assert wait_until(lambda: upload_in_progress(dev), 5)

    extra = []
    outcomes = []
    for i in range(8):
        t = time.monotonic()
        c = Conn(dev.web, timeout=5)
        if i % 2:
            try:
                c.send(b"PUT /files/x HTTP/1.1\r\nHost: d\r\n")  # a partial head
            except (BrokenPipeError, ConnectionResetError):
                pass
        extra.append((c, t))
    # When did something (bytes, a FIN or a reset) first arrive on each? Watched together for 1.8 s.
    arrived = {}
    end = time.monotonic() + 1.8
    while len(arrived) < len(extra) and time.monotonic() < end:
        waiting = [c.sock for c, _ in extra if c.sock not in arrived]
        ready, _, _ = select.select(waiting, [], [], max(0.0, end - time.monotonic()))
        for s in ready:
            arrived[s] = time.monotonic()
    for c, t in extra:
        if c.sock not in arrived:
            outcomes.append(("silent", None, None))
            continue
        try:
            r = c.read_response(timeout=2)
            outcomes.append(("resp", r, arrived[c.sock] - t))
        except (EOFError, ConnectionResetError) as e:
            outcomes.append(("reset", e, arrived[c.sock] - t))
    refused = [o for o in outcomes if o[0] != "silent"]
    # One slot holds the upload; at most 3 of the 8 get the rest of the pool and wait; the others are
    # refused at once (or, past POSTERN_EVICT_GRACE_MS, a silent one gives its slot to a retried SYN).
    assert len(refused) >= 5, outcomes
    assert sum(o[0] == "silent" for o in outcomes) <= 3, outcomes
    for kind, r, dt in refused:
        # Quick means well before any timeout: without a free pcb a SYN is
        # dropped and the client retries after 1 s and 3 s, which still passes.
        assert dt < 5.0, outcomes
        if kind == "resp":
            assert_json_error(r, 503, "service_unavailable")
            assert r.headers["connection"] == "close"
    for (c, _), o in zip(extra, outcomes):
        if o[0] == "resp":
            assert c.closed_by_peer(2)
    for c, _ in extra:
        c.close()

    up.send(data[half:])
    r = up.read_response(timeout=20)
    assert r.status == 201, r
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
    up.close()
    assert hashlib.sha256(dev.read_file("big.bin")).hexdigest() == hashlib.sha256(data).hexdigest()
    assert wait_until(lambda: status_doc(dev)["connections"]["active"] == 1, 5)
    assert_serving(dev)


# ---- 4. Power loss and a full flash ------------------------------------------------------------

@pytest.mark.targets("host", why="the board's flash model lives in QEMU's RAM and does not outlive the process; "
                     "tests/unit/test_storage_flash.c cuts power at every program step instead")
def test_power_loss_mid_upload_keeps_v1_and_leaves_nothing(launch, tmp_path):
    storage = str(tmp_path / "flash")
    os.makedirs(storage)
    dev = launch({"token": TOKEN, "capacity": "4M"}, storage=storage)
    v1 = os.urandom(200 * 1024)
    assert request(dev.web, "PUT", "/files/fw.bin", v1, {"Authorization": AUTH}).status == 201
    c = Conn(dev.web)
    c.send(b"PUT /files/fw.bin HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"Content-Length: 1048576\r\n\r\n" +
           os.urandom(300 * 1024))
    assert wait_until(lambda: temp_files(dev) != [] and os.path.getsize(
        os.path.join(storage, temp_files(dev)[0])) >= 100 * 1024, 5)
    dev.device.proc.kill()
    dev.device.proc.wait()
    c.close()
    assert temp_files(dev) != []  # the kill left the partial v2 behind, as a power loss would

    dev2 = launch({"token": TOKEN, "capacity": "4M"}, storage=storage)
    assert "removed 1 unfinished upload" in dev2.wait_for_log("storage: ")
    assert sorted(os.listdir(storage)) == [".sha256-fw.bin", "fw.bin"]  # v1 and its digest
    with open(os.path.join(storage, "fw.bin"), "rb") as f:
        assert f.read() == v1
    r = request(dev2.web, "GET", "/files/fw.bin", None, {"Authorization": AUTH})
    assert r.status == 200 and r.body == v1
    assert r.headers["etag"] == '"%s"' % hashlib.sha256(v1).hexdigest()[:32]  # the digest is v1's, never v2's
    assert status_doc(dev2)["storage"]["free"] == 4 * 1024 * 1024 - len(v1)


@pytest.mark.targets("host", "mps2", "host-rtos", why="a 256 KiB medium: the lm3s6965evb's smallest card (512 KiB) "
                     "holds both uploads; its own card tests fill a card")
def test_flash_fills_mid_stream_507_nothing_partial_space_back(launch):
    """Every backend reserves a known length when the upload opens (storage.h), so b's 507 comes at once,
    before its body is read, while a keeps its space and completes. Nothing of b stays."""
    dev = launch({"token": TOKEN, "capacity": "256K"})
    base = status_doc(dev)["storage"]["free"]
    size = 160 * 1024  # each fits alone; the two together do not
    a_data, b_data = os.urandom(size), os.urandom(size)
    a = Conn(dev.web)
    a.send(b"PUT /files/a.bin HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"Content-Length: %d\r\n\r\n" % size +
           a_data[:150 * 1024])
    assert wait_until(lambda: status_doc(dev)["storage"]["free"] <= base - 150 * 1024, 5)
    b = Conn(dev.web)
    b.send(b"PUT /files/b.bin HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"Content-Length: %d\r\n\r\n" % size)
    try:
        b.send(b_data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = b.read_response()
    assert_json_error(r, 507, "insufficient_storage")
    assert r.headers["connection"] == "close"
    assert b.closed_by_peer(3)
    b.close()
    a.send(a_data[150 * 1024:])
    r = a.read_response()
    assert r.status == 201 and r.json()["sha256"] == hashlib.sha256(a_data).hexdigest()
    a.close()
    assert visible_files(dev) == ["a.bin"] and temp_files(dev) == []  # nothing of b.bin, no temporary file
    used = base - status_doc(dev)["storage"]["free"]
    if dev.board == "host":
        assert used == size
    else:
        assert size <= used <= size + 4096, used  # whole erase blocks, one header
    assert request(dev.web, "DELETE", "/files/a.bin", None, {"Authorization": AUTH}).status == 204
    assert status_doc(dev)["storage"]["free"] == base
    assert_serving(dev)


# ---- 5. Soak ---------------------------------------------------------------------------------------

POOLS = ("tcp_seg", "pbuf_pool", "pbuf_ref", "altcp_pcb", "heap")


def _resources(doc):
    m = doc["memory"]
    return ({p: m["lwip"][p]["used"] for p in POOLS}, m["lua"]["live"], doc["storage"]["free"],
            doc["connections"]["active"])


@pytest.mark.targets("host", "mps2", "host-rtos", why="a minute of load over 20 names: the lm3s6965evb's SD store "
                     "holds 8 files (its RAM), and its share of the suite stays short")
def test_soak_2000_mixed_requests_resources_back_at_baseline(dev):
    base = _resources(status_doc(dev))
    assert base[3] == 1
    counts = {}
    unexpected = []
    names = set()
    n = 0
    t0 = time.monotonic()
    ka = None

    def note(what, status, want):
        counts[(what, status)] = counts.get((what, status), 0) + 1
        if status not in want:
            unexpected.append((n, what, status))

    reconnects = [0]

    def keepalive(req, head_request=False):
        # When the pool is full an idle keep-alive connection gives its slot to a new client (the fresh
        # connections below); like any HTTP client, this one then sends again on a new connection.
        nonlocal ka
        for attempt in range(2):
            if ka is None:
                ka = Conn(dev.web, timeout=10)
            try:
                ka.send(req)
                return ka.read_response(head_request=head_request)
            except (EOFError, BrokenPipeError, ConnectionResetError):
                if attempt or ka.buf:
                    raise
                ka.close()
                ka = None
                reconnects[0] += 1

    busy = [0]

    def fresh(req, read=True):
        # A client's close reaches the device a little after the next connect can: with the keep-alive
        # connection and three fresh ones in a row, the pool (4) can be full for a moment. That is the
        # documented answer (a quick 503 JSON, Connection: close); count it and retry shortly.
        for _ in range(20):
            c = Conn(dev.web, timeout=10)
            try:
                try:
                    c.send(req)
                except (BrokenPipeError, ConnectionResetError):
                    return None
                if not read:
                    return None
                r = c.read_response()
                if r.status != 503:
                    return r
                assert_json_error(r, 503, "service_unavailable")
                assert r.headers["connection"] == "close"
                busy[0] += 1
            finally:
                c.close()
            time.sleep(0.02)
        return r

    i = 0
    while n < 2000 and time.monotonic() - t0 < 55:
        i += 1
        name = "soak-%d.bin" % (i % 16)
        body = os.urandom(64 + (i * 37) % 4000)
        step = i % 10
        if step == 0:
            r = keepalive(b"PUT /files/%s HTTP/1.1\r\nHost: d\r\n" % name.encode() + AUTH_LINE +
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
            note("put", r.status, (200, 201))
            names.add(name)
        elif step == 1:
            r = keepalive(b"GET /files/%s HTTP/1.1\r\nHost: d\r\n" % name.encode() + AUTH_LINE + b"\r\n")
            note("get", r.status, (200, 404))
        elif step == 2:
            r = fresh(b"PUT /files/r.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer bad\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            note("refused", r.status if r else None, (403,))
        elif step == 3:
            r = fresh(b"PUT /files/r.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer bad\r\n"
                      b"Content-Length: 500000\r\nExpect: 100-continue\r\n\r\n")
            note("refused_expect", r.status if r else None, (417,))
        elif step == 4:
            fresh(b"PUT /files/ab-%d.bin HTTP/1.1\r\nHost: d\r\n" % (i % 4) + AUTH_LINE +
                  b"Content-Length: 100000\r\n\r\n" + body, read=False)
            note("aborted", None, (None,))
        elif step == 5:
            r = fresh(b"GET /_status HTTP/1.1\r\nHost : d\r\n\r\n")
            note("malformed", r.status if r else None, (400,))
        elif step == 6:
            r = keepalive(b"GET /_status HTTP/1.1\r\nHost: d\r\n\r\n")
            note("status", r.status, (200,))
        elif step == 7:
            r = fresh(b"GET /files/ HTTP/1.1\r\nHost: d\r\nConnection: close\r\n" + AUTH_LINE + b"\r\n")
            note("list", r.status if r else None, (200,))
        elif step == 8:
            r = keepalive(b"HEAD /files/%s HTTP/1.1\r\nHost: d\r\n" % name.encode() + AUTH_LINE + b"\r\n",
                          head_request=True)
            note("head", r.status, (200, 404))
        else:
            r = keepalive(b"PUT /files/%s HTTP/1.1\r\nHost: d\r\n" % name.encode() + AUTH_LINE +
                          b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body))
            if r.status == 100:
                ka.send(body)
                r = ka.read_response()
            note("put_expect", r.status, (200, 201))
            names.add(name)
        n += 1
    wall = time.monotonic() - t0
    if ka is not None:
        ka.close()
    print("soak: %d requests in %.1f s, %d pool-busy 503 retried, %d idle keep-alive closes: %s"
          % (n, wall, busy[0], reconnects[0], sorted(counts.items(), key=str)))
    assert not unexpected, unexpected[:20]
    # Rare, not the rule: at most 5% (the board, behind QEMU, sees closes later than the host: ~3%).
    assert busy[0] <= n // 20, busy[0]
    # Four fresh connections in a row often meet the closes of the last ones not yet arrived: the idle
    # keep-alive connection then gives its slot (at most 10%; about 7% on the host).
    assert reconnects[0] <= n // 10, reconnects[0]
    assert n >= 1000, (n, wall)  # bounded by 2000 requests or 55 s, whichever comes first

    for name in sorted(names):
        assert request(dev.web, "DELETE", "/files/" + name, None, {"Authorization": AUTH}).status == 204
    assert visible_files(dev) == []
    last = [None]

    def back():
        last[0] = _resources(status_doc(dev))
        return last[0] == base
    assert wait_until(back, 10, step=0.5), (base, last[0])
    assert_nothing_left(dev)


# ---- HEAD error responses carry no content (found by the soak) ---------------------------------

def test_head_error_response_has_no_body_and_keepalive_stays_in_sync(dev):
    """RFC 9110 9.3.2: a 404 (or any error) to HEAD must not carry the JSON body, or the next response on
    the kept-alive connection starts with stray bytes. Content-Length still tells the GET's length."""
    c = Conn(dev.web)
    c.send(b"HEAD /files/missing.bin HTTP/1.1\r\nHost: d\r\n" + AUTH_LINE + b"\r\n"
           b"HEAD /files/missing.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer bad\r\n\r\n"
           b"GET /_status HTTP/1.1\r\nHost: d\r\n\r\n")
    r = c.read_response(head_request=True)
    assert r.status == 404 and r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) > 0 and r.body == b""
    r = c.read_response(head_request=True)
    assert r.status == 403 and r.body == b""
    r = c.read_response()
    assert r.status == 200 and "storage" in r.json()  # in sync: the third answer starts cleanly
    assert c.nothing_more(0.3)
    c.close()
    assert_serving(dev)
