"""test_attack_policy.py: a plausible policy's backtracking pattern on a hostile header: each request fails closed
within the instruction budget (500 policy_error, one log line naming the script line), and a legitimate client
beside the attacker is still served. Only 127.0.0.1 is ever contacted; the attack is bounded in count and time."""
import re
import time

import pytest

from attack import Legit
from httpwire import request

TOKEN = "p4ttern-T"

# The pattern check runs before the token check, as a policy author might write it: under lstrlib its
# matcher ran unmetered, 14 s per request on the host for 1,950 '/' (the whole device stalled meanwhile).
POLICY = """-- firmware uploads say where they come from: X-Firmware: board/version/name.bin
function on_request(req)
  if req.method == "GET" and req.path == "/_status" then return true end
  local fw = req.headers["x-firmware"]
  if fw then
    local board, version, name = fw:match("^(.-)/(.-)/(.-)%.bin$")
    if not board then return 400, "X-Firmware is board/version/name.bin" end
  end
  if not auth.equal(auth.bearer(req.headers.authorization) or "", config.token) then
    return 403, "bad or missing token"
  end
  return true
end
"""
PATTERN_LINE = 6  # the line of the match above

# Device time of one refused request: its round trip less that of an honest head of the same size (on the host
# over slirp a 2 KB head alone takes about 250 ms: slirp's first window is one segment and lwIP delays its ACK).
# The host's budget is about a millisecond of CPU; the board under QEMU runs the same 200,000 steps at 25 MHz.
DEVICE_TIME_S = {"host": 0.1, "mps2": 2.0}
ATTACK_S = 10.0
ATTACK_MAX = 300


@pytest.mark.targets("host", "host-https", "mps2", why="mps2-https: the board's one TLS session would be shared "
                     "by the attacker and the legitimate client, which measures queueing, not the policy")
def test_backtracking_pattern_on_a_header_fails_closed_within_the_budget(launch, tmp_path):
    pol = tmp_path / "firmware.lua"
    pol.write_text(POLICY)
    dev = launch({"capacity": "3M", "token": TOKEN}, policy=str(pol))
    auth = {"Authorization": "Bearer " + TOKEN}
    # The pattern works as meant on an honest value.
    r = request(dev.web, "GET", "/files/none.bin", None, dict(auth, **{"X-Firmware": "mps2/1.2/fw.bin"}))
    assert r.status == 404, r
    r = request(dev.web, "GET", "/files/none.bin", None, dict(auth, **{"X-Firmware": "fw.zip"}))
    assert r.status == 400, r

    hostile = {"X-Firmware": "/" * 1950}
    honest = {"X-Firmware": "a" * 1941 + "/b/c.bin"}  # as long, matched in a few thousand steps

    def trip(headers, status):
        t0 = time.monotonic()
        r = request(dev.web, "GET", "/files/none.bin", None, headers, timeout=30)
        assert r.status == status, r
        return time.monotonic() - t0, r

    base = sorted(trip(dict(auth, **honest), 404)[0] for _ in range(5))[2]
    mark = dev.log_mark()
    trips = []
    with Legit(dev, token=TOKEN) as legit:
        t_end = time.monotonic() + ATTACK_S
        while time.monotonic() < t_end:
            t, r = trip(hostile, 500)
            assert r.json()["error"] == "policy_error", r
            trips.append(t)
            time.sleep(max(0.0, ATTACK_S / ATTACK_MAX - t))  # at most ATTACK_MAX, spread over the attack
    legit.assert_served()

    limit = DEVICE_TIME_S[dev.board]
    trips.sort()
    median = trips[len(trips) // 2]
    print("attack: %d requests, round trip median %.1f ms, max %.1f ms, honest head %.1f ms; legit %d uploads, "
          "%.0f %% served, longest /_status gap %.2f s" % (len(trips), 1e3 * median, 1e3 * trips[-1], 1e3 * base,
                                                          len(legit.uploads), 100 * legit.served_ratio,
                                                          legit.longest_status_gap))
    assert len(trips) >= 5
    assert median - base < limit, (base, trips)
    # The slowest may have waited behind a legitimate upload's work: still far from seconds of matching.
    assert trips[-1] - base < 5 * limit, (base, trips)
    # One log line per refusal, naming the pattern's line.
    dev.wait_for_log("instruction budget exhausted at", start=mark)
    lines = [ln for ln in dev.lines[mark:] if "policy: error:" in ln]
    assert lines and all(re.search(r"instruction budget exhausted at .*firmware\.lua:%d" % PATTERN_LINE, ln)
                         for ln in lines), lines[:3]
    # And the device goes on deciding.
    r = request(dev.web, "GET", "/files/none.bin", None, dict(auth, **{"X-Firmware": "a/b/c.bin"}))
    assert r.status == 404, r
