"""figures.py: `make bench`: postern's figures against their budgets.

Prints one table and writes the same figures to build/bench/figures.json (and a
Markdown copy, build/bench/figures.md, for the README). Deterministic where it
can be: instruction counts come from callgrind; throughput is the median of
several runs in one process lifetime.
"""
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from conftest import ROOT, CERTS, CA_CERT, LM3S_ELF, Device, Endpoint, _board_image, make_card  # noqa: E402
from qemu_device import Lm3sDevice, QemuDevice  # noqa: E402
from httpwire import Conn, request  # noqa: E402

OUT_DIR = os.path.join(ROOT, "build", "bench")
KIB = 1024
MIB = 1024 * 1024
TOKEN = "bench-T"
THROUGHPUT_SIZE = 64 * MIB
THROUGHPUT_RUNS = 5
FRESH_SIZE = 2 * MIB
FRESH_RUNS = 5
DECISIONS = 20

rows = []  # (group, figure, value, unit, budget text, within budget, note)
figures = {}


def row(group, key, figure, value, unit, budget=None, note="", at_least=False):
    """Records one figure; budget is an upper limit (a lower one with at_least), or None."""
    within = None if budget is None or value is None else (value >= budget if at_least else value <= budget)
    if within is False and budget:  # how far off, first: the note goes on to say what the rest is
        note = "%.2f x the budget; " % (value / budget) + note
    rows.append((group, figure, value, unit, (">= " if at_least else "<= ") + _fmt(budget) if budget else "",
                 within, note))
    figures[key] = {"figure": figure, "value": value, "unit": unit, "budget": budget,
                    "budget_kind": "at least" if at_least else "at most", "within_budget": within, "note": note}


# ---- Footprint of the mps2-an385 firmware ---------------------------------------------------------

COMPONENT = re.compile(r"^\s{2}(\S.*?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\|\s+(\d+)\s+(\d+)\s*$")
BUDGET = re.compile(r"^\s*(flash|RAM) \(.*?\)\s+([\d.]+) KiB of (\d+) KiB")


def _size_report(tls, ipv6=None):
    """`make BOARD=mps2-an385 TLS=<tls> [IPV6=<ipv6>] size`: components (flash, RAM in bytes) and the image
    totals in KiB."""
    cmd = ["make", "--no-print-directory", "-C", ROOT, "BOARD=mps2-an385", "TLS=%d" % tls]
    if ipv6 is not None:
        cmd.append("IPV6=%d" % ipv6)
    r = subprocess.run(cmd + ["size"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    comps, totals = {}, {}
    for line in r.stdout.splitlines():
        m = COMPONENT.match(line)
        if m and m.group(1) != "component":
            comps[m.group(1)] = (int(m.group(6)), int(m.group(7)))
        m = BUDGET.match(line)
        if m:
            totals[m.group(1)] = float(m.group(2))
    assert comps and "flash" in totals and "RAM" in totals, r.stdout
    return comps, totals


def footprint():
    for tls, flash_budget in ((1, 320), (0, 192)):
        comps, totals = _size_report(tls)
        group = "mps2-an385 firmware, -Os, %s" % ("with TLS" if tls else "without TLS (TLS=0)")
        key = "tls" if tls else "notls"
        row(group, "flash_kib_" + key, "flash (text + rodata + data)", totals["flash"], "KiB", flash_budget,
            "make BOARD=mps2-an385 TLS=%d size" % tls)
        row(group, "ram_kib_" + key, "RAM (data + bss + stack; no heap)", totals["RAM"], "KiB", 128,
            "pools and arenas are static, counted at full size")
        for name, (flash, ram) in comps.items():
            if name in ("total",) or name.startswith("other"):
                continue
            row(group, "flash_%s_%s" % (key, re.sub(r"\W+", "_", name).strip("_")), "  " + name,
                round(flash / KIB, 1), "KiB flash", None, "%.1f KiB RAM" % (ram / KIB))
    # IPv6's cost: the dual-stack image against the IPv4-only one (the defaults: TLS on, TLS=0 off).
    group = "mps2-an385 firmware: what IPv6 adds (IPV6=1 against IPV6=0)"
    for tls in (1, 0):
        key = "tls" if tls else "notls"
        _, with6 = _size_report(tls, 1)
        _, without6 = _size_report(tls, 0)
        row(group, "ipv6_flash_kib_" + key, "flash, %s" % ("with TLS" if tls else "without TLS"),
            round(with6["flash"] - without6["flash"], 1), "KiB", 20,
            "dual stack %.1f KiB of %d" % (with6["flash"], 320 if tls else 192))
        row(group, "ipv6_ram_kib_" + key, "RAM, %s" % ("with TLS" if tls else "without TLS"),
            round(with6["RAM"] - without6["RAM"], 1), "KiB", 4, "dual stack %.1f KiB of 128" % with6["RAM"])


# ---- RAM high-water marks on the board -----------------------------------------------------------

def _symbol_size(elf, symbol):
    out = subprocess.run(["arm-none-eabi-nm", "-S", elf], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == symbol:
            return int(parts[1], 16)
    raise AssertionError("no symbol %s in %s" % (symbol, elf))


def board_ram():
    """Boots the default firmware, serves one HTTPS upload and three plain ones at once, reads /_status."""
    elf = _board_image({"token": TOKEN}, None)
    dev = QemuDevice(elf)
    try:
        st0 = request(dev.http, "GET", "/_status").json()
        body = os.urandom(256 * 1024)
        plain = []
        for i in range(3):
            c = Conn(dev.http, timeout=60)
            c.send(b"PUT /files/p%d.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n"
                   b"Expect: 100-continue\r\n\r\n" % (i, TOKEN.encode(), len(body)))
            assert c.read_response().status == 100
            plain.append(c)
        r = subprocess.run(["curl", "-sS", "--cacert", CA_CERT, "-T", "-", "-H", "Authorization: Bearer " + TOKEN,
                            Endpoint(dev.https, True).url("/files/t.bin")], input=body, capture_output=True,
                           timeout=120)
        assert b'"sha256"' in r.stdout, r.stderr
        for c in plain:
            c.send(body)
            assert c.read_response(timeout=60).status == 201
            c.close()
        st = request(dev.http, "GET", "/_status").json()
    finally:
        dev.stop()
    mem = st["memory"]
    lw = mem["lwip"]
    plain_bytes = st["connections"]["slot_bytes"] + lw["tcp_pcb"]["size"] + lw["altcp_pcb"]["size"]
    row("RAM on the board (from /_status after 1 HTTPS + 3 plain uploads at once)", "ram_plain_conn",
        "one plain connection", plain_bytes, "B", 2560,
        "slot %d + tcp_pcb %d + altcp_pcb %d; lwIP buffers aside" % (st["connections"]["slot_bytes"],
                                                                    lw["tcp_pcb"]["size"], lw["altcp_pcb"]["size"]))
    th = mem["tls_heap"]
    session = _symbol_size(elf, "tls_sessions") // max(1, st["tls"]["max"])
    tls_peak = th["high_water"] - st0["memory"]["tls_heap"]["in_use"] + session + plain_bytes + lw["altcp_pcb"]["size"]
    row("RAM on the board (from /_status after 1 HTTPS + 3 plain uploads at once)", "ram_tls_conn_peak",
        "one TLS connection at its peak", tls_peak, "B", 48 * KIB,
        "TLS heap peak %d less its idle %d (certificate, key) + session %d + a plain connection + the TLS altcp pcb"
        % (th["high_water"], st0["memory"]["tls_heap"]["in_use"], session))
    row("RAM on the board (from /_status after 1 HTTPS + 3 plain uploads at once)", "tls_heap_high_water",
        "TLS heap high water (of %d)" % th["size"], th["high_water"], "B", None, "certificate and key included")
    lua = mem["lua"]
    row("RAM on the board (from /_status after 1 HTTPS + 3 plain uploads at once)", "lua_live",
        "Lua VM, default policy: live after a full collection", lua["live"], "B", 24 * KIB, "")
    row("RAM on the board (from /_status after 1 HTTPS + 3 plain uploads at once)", "lua_high_water",
        "Lua VM, default policy: arena high water (of %d)" % lua["cap"], lua["high_water"], "B", 24 * KIB,
        "the collector runs as the arena fills, so this follows the arena's size")
    for pool in ("heap", "pbuf_pool", "tcp_seg"):
        m = lw[pool]
        row("RAM on the board (from /_status after 1 HTTPS + 3 plain uploads at once)", "lwip_" + pool,
            "lwIP %s high water" % pool, m["max"], "B" if pool == "heap" else "of %d" % m["avail"], None,
            "of %d B" % m["avail"] if pool == "heap" else "")


# ---- Guest instructions on the boards: the bench builds under QEMU's instruction counting --------

BENCH_ELF = os.path.join(ROOT, "build", "mps2-an385-bench", "bench", "postern.elf")
LM3S_BENCH_ELF = os.path.join(ROOT, "build", "lm3s6965evb-bench", "default", "postern.elf")
BENCH_SIZE = 512 * KIB  # and twice that: the 3 MiB flash holds both, one at a time
BENCH_DECISIONS = 10


def _make(*args):
    r = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "-j2"] + list(args), capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def _bench_image():
    _make("BOARD=mps2-an385", "BENCH=1", "VARIANT=bench", "SET=token=%s capacity=3M" % TOKEN)
    return BENCH_ELF


def _lm3s_bench_image():
    _make("BOARD=lm3s6965evb", "BENCH=1")
    return LM3S_BENCH_ELF


def _qemu_env(qemu_args, dump):
    env = dict(os.environ, POSTERN_QEMU_ARGS=qemu_args)
    if dump:
        env["POSTERN_QEMU_DUMP"] = dump
    return env


class BoardUnderQemu(QemuDevice):
    """The mps2-an385 under QEMU with extra options (POSTERN_QEMU_ARGS) and an optional capture of its link."""

    def __init__(self, elf, qemu_args="", dump=None, ready_timeout=30):
        self.env = _qemu_env(qemu_args, dump)
        self.ready_timeout = ready_timeout  # a traced boot logs every block: minutes on a loaded machine
        super().__init__(elf)

    def _start(self):
        from qemu_device import QEMU_RUN
        cmd = [QEMU_RUN, self.elf, str(self.http), str(self.https), str(self.echo), str(self.discard)]
        self._attach(subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace"))


class Lm3sUnderQemu(Lm3sDevice):
    """The lm3s6965evb under QEMU on a fresh card holding the bench token (settings on the card, the baked
    policy), with extra options and an optional capture of its link like BoardUnderQemu."""

    def __init__(self, elf, qemu_args="", dump=None):
        self.env = _qemu_env(qemu_args, dump)
        self.tmp = tempfile.TemporaryDirectory()
        super().__init__(elf, make_card(os.path.join(self.tmp.name, "card.img"), 64 << 20, {"token": TOKEN}))

    def _start(self):
        from qemu_device import LM3S_RUN
        cmd = [LM3S_RUN, self.elf, self.card, str(self.http), str(self.echo), str(self.discard)]
        self._attach(subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace"))

    def stop(self, *args):
        rc = super().stop(*args)
        self.tmp.cleanup()
        return rc


# What differs between the boards' bench tables: the image, the device, whether HTTPS rows apply, what the
# medium's own work is, and the figures' key prefix.
BENCH_BOARDS = (
    {"board": "mps2-an385", "key": "board", "image": _bench_image, "device": BoardUnderQemu, "https": True,
     "clock": "timer 0 at 25 MHz, 40 instructions a tick",
     "medium": "  of which the flash model's own work", "medium_note": "a chip's on real hardware"},
    {"board": "lm3s6965evb", "key": "lm3s", "image": _lm3s_bench_image, "device": Lm3sUnderQemu, "https": False,
     "clock": "SysTick at 50 MHz, 20 instructions a tick (timer 0 reads 0 under QEMU)",
     "medium": "  of which the SD card's SPI transfers and CRC16",
     "medium_note": "the CPU's work on this board too (no DMA: it moves every byte through the SSI FIFO)"},
)


def _lines_from(dev, start, prefix):
    with dev.cond:
        return [l for l in dev.lines[start:] if l.startswith(prefix)]


def _wait_line(dev, start, prefix, timeout=60):
    """The first console line from index start on that begins with prefix."""
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        got = _lines_from(dev, start, prefix)
        if got:
            return got[0]
        time.sleep(0.02)
    raise AssertionError("no %r line; last lines:\n%s" % (prefix, "\n".join(dev.lines[-20:])))


def _busy_after(dev, action):
    """Guest instructions the device spent on action(): its busy count once the network was quiet, before and
    after."""
    action()
    end = len(dev.lines)
    line = _wait_line(dev, end, "bench: busy ").split()
    return int(line[2]), int(line[5])  # busy instructions, the medium's share of them


def _decision(dev, auth, expect):
    """One PUT on a new connection; the device's count of its decision."""
    n = len(dev.lines)
    body = b"x" * 100
    c = Conn(Endpoint(dev.http, False), timeout=30)
    c.send(b"PUT /files/d.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n%s\r\n"
           % (auth.encode(), len(body), b"Expect: 100-continue\r\n" if expect else b""))
    if expect:
        r = c.read_response(timeout=30)
        if r.status == 100:
            c.send(body)
            r = c.read_response(timeout=30)
    else:
        c.send(body)
        r = c.read_response(timeout=30)
    c.close()
    line = _wait_line(dev, n, "bench: decision ").split()
    return int(line[2]), r.status, int(line[4])


def _put(dev, tls, name, size):
    c = Conn(Endpoint(dev.https if tls else dev.http, tls), timeout=300)
    c.send(("PUT /files/%s HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n"
            "Expect: 100-continue\r\n\r\n" % (name, TOKEN, size)).encode())
    assert c.read_response(timeout=60).status == 100
    for _ in range(size // len(BLOCK)):
        c.send(BLOCK)
    r = c.read_response(timeout=300)
    assert r.status in (200, 201), r
    c.send(("DELETE /files/%s HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer %s\r\n\r\n" % (name, TOKEN)).encode())
    assert c.read_response(timeout=60).status == 204
    c.close()
    return r


def _discard_bytes(dev, size):
    with socket.create_connection(("127.0.0.1", dev.discard), timeout=300) as s:
        for _ in range(size // len(BLOCK)):
            s.sendall(BLOCK)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)


def _per_byte(dev, what):
    """Marginal guest instructions per byte: (busy of 1 MiB - busy of 512 KiB) / 512 KiB, so that what every
    transfer pays once (connection, TLS handshake, decision, commit) drops out."""
    b0 = _busy_after(dev, lambda: request(Endpoint(dev.http, False), "GET", "/_status"))  # a quiet start
    b1 = _busy_after(dev, lambda: what(BENCH_SIZE))
    b2 = _busy_after(dev, lambda: what(2 * BENCH_SIZE))
    per = [((y[k] - x[k]) % 2 ** 32) for x, y in ((b0, b1), (b1, b2)) for k in (0, 1)]
    return ((per[2] - per[0]) / BENCH_SIZE, (per[3] - per[1]) / BENCH_SIZE)


NO_DIGEST_TAIL = "  return { status = 100, digest = false }\nend\n\nfunction self_test()"


def _board_counts(board, elf):
    """One boot of a bench build under -icount shift=0: every count its table reports."""
    out = {}
    dev = board["device"](elf, "-icount shift=0")
    try:
        cal = _wait_line(dev, 0, "bench: calibration ").split()
        out["calibration"] = int(cal[2]) / int(cal[5])
        sha = _wait_line(dev, 0, "bench: sha256 ").split()
        out["sha256"] = int(sha[2]) / int(sha[5])
        for key, auth, expect in (("accepted_expect", TOKEN, True), ("refused_expect", "wrong", True),
                                  ("accepted_plain", TOKEN, False), ("refused_plain", "wrong", False)):
            got = [_decision(dev, auth, expect) for _ in range(BENCH_DECISIONS)]
            want = 201 if auth == TOKEN else (417 if expect else 403)
            assert all(st in (want, 200) for _, st, _ in got), got
            counts = sorted(n for n, _, _ in got[1:])  # the first after boot warms the arena: left out
            policy = statistics.median(p for _, _, p in got[1:])
            out["decision_" + key] = (statistics.median(counts), counts[0], counts[-1], got[0][0], policy)
        out["discard"] = _per_byte(dev, lambda n: _discard_bytes(dev, n))[0]
        out["put_digest"], out["medium_digest"] = _per_byte(dev, lambda n: _put(dev, False, "b%d.bin" % n, n))
        if board["https"]:
            out["put_digest_tls"] = _per_byte(dev, lambda n: _put(dev, True, "s%d.bin" % n, n))[0]
        src = open(os.path.join(ROOT, "scripts", "policy.lua")).read()
        head, sep, tail = src.rpartition("  return true\nend\n\nfunction self_test()")
        assert sep, "scripts/policy.lua changed shape: no final accept before self_test"
        text = "\n".join(l for l in (head + NO_DIGEST_TAIL + tail).splitlines()
                         if l.strip() and not l.lstrip().startswith("--")) + "\n"  # the board's room is small
        r = request(Endpoint(dev.http, False), "PUT", "/_policy", text.encode(),
                    {"Authorization": "Bearer " + TOKEN}, timeout=60)
        assert r.status == 200, r
        r = _put(dev, False, "probe.bin", len(BLOCK))
        assert "sha256" not in r.json(), r.json()
        out["put_nodigest"], out["medium_nodigest"] = _per_byte(dev, lambda n: _put(dev, False, "n%d.bin" % n, n))
        if board["https"]:
            out["put_nodigest_tls"] = _per_byte(dev, lambda n: _put(dev, True, "t%d.bin" % n, n))[0]
    finally:
        dev.stop()
    return out


def _board_table(board):
    """Two boots of one board's bench build; its rows against the budgets (decision <= 5,000 instructions,
    upload without digest <= 1.10 x discard, with digest <= 1.10 x (discard + SHA-256 alone))."""
    elf = board["image"]()
    runs = [_board_counts(board, elf) for _ in range(2)]
    a, b = runs
    k = board["key"]
    group = "%s guest instructions (bench build, qemu -icount shift=0; two boots)" % board["board"]

    def spread(key, i=None):
        x, y = (a[key], b[key]) if i is None else (a[key][i], b[key][i])
        return abs(x - y)

    row(group, k + "_calibration", "instructions per counted instruction (calibration)", round(a["calibration"], 3),
        "ratio", None, "a 200,000-instruction loop, %s; 1.000 = exact" % board["clock"])
    for key, what in (("accepted_expect", "decision, Expect: accepted, 100 queued"),
                      ("refused_expect", "decision, Expect: refused, 417 queued (JSON and log line)"),
                      ("accepted_plain", "decision, no Expect: accepted, upload open and ACK queued"),
                      ("refused_plain", "decision, no Expect: refused, 403 queued (JSON and log line)")):
        med, lo, hi, first, policy = a["decision_" + key]
        row(group, k + "_decision_" + key, what, int(med), "instr", 5000,
            "median of %d (%d..%d), the boots differ by %d; policy_decide %d of it, the rest %d (%s); first after boot %d"
            % (BENCH_DECISIONS - 1, lo, hi, spread("decision_" + key, 0), policy, med - policy,
               "head, routing, answer and its log line" if "refused" in key else "head, routing, storage open, 100/ACK",
               first))
    sha = a["sha256"]
    d = a["discard"]
    row(group, k + "_sha256", "SHA-256 alone (mbedTLS, -Os), per byte", round(sha, 2), "instr/B", None,
        "64 KiB of flash, at boot; the boots differ by %.2f" % spread("sha256"))
    row(group, k + "_discard", "discard sink (raw TCP, port 9), per byte", round(d, 2), "instr/B", None,
        "marginal: (1 MiB - 512 KiB) / 512 KiB; the boots differ by %.2f" % spread("discard"))
    nd, wd = a["put_nodigest"], a["put_digest"]
    mn, mw = a["medium_nodigest"], a["medium_digest"]
    row(group, k + "_put_nodigest", "upload, digest = false, per byte", round(nd, 2), "instr/B",
        round(1.10 * d, 2), "%.2f x discard; the boots differ by %.2f" % (nd / d, spread("put_nodigest")))
    row(group, k + "_medium_nodigest", board["medium"], round(mn, 2), "instr/B", None,
        "%s; the rest %.2f = %.2f x discard" % (board["medium_note"], nd - mn, (nd - mn) / d))
    row(group, k + "_put_digest", "upload with SHA-256, per byte", round(wd, 2), "instr/B",
        round(1.10 * (d + sha), 2), "%.2f x (discard + SHA-256); the boots differ by %.2f"
        % (wd / (d + sha), spread("put_digest")))
    row(group, k + "_medium_digest", board["medium"], round(mw, 2), "instr/B", None,
        "the rest %.2f = %.2f x (discard + SHA-256)" % (wd - mw, (wd - mw) / (d + sha)))
    if board["https"]:
        row(group, k + "_put_nodigest_tls", "upload over HTTPS, digest = false, per byte",
            round(a["put_nodigest_tls"], 2), "instr/B", None,
            "TLS record decryption included; the boots differ by %.2f" % spread("put_nodigest_tls"))
        row(group, k + "_put_digest_tls", "upload over HTTPS with SHA-256, per byte", round(a["put_digest_tls"], 2),
            "instr/B", None, "the boots differ by %.2f" % spread("put_digest_tls"))
    figures[k + "_runs"] = runs


def board_instructions():
    for board in BENCH_BOARDS:
        _board_table(board)


# ---- Where a decision's instructions go: QEMU's execution trace, by stage ---------------------------

PROFILE_DECISIONS = 3  # of each kind; the last one is reported (the first warms the arena)


def decision_profile():
    """The mps2-an385 bench build's decisions traced (guest_profile.py): instructions per stage of the data
    path and the functions that cost most, for the accepted and the refused decision with Expect."""
    import guest_profile
    elf = _bench_image()
    trace = guest_profile.Trace(guest_profile.Symbols(elf), "bench_decision_begin", "bench_decision_end")
    kinds = (("accepted", TOKEN, "Expect: accepted, 100 queued"), ("refused", "wrong", "Expect: refused, 417 queued"))
    dev = BoardUnderQemu(elf, "-icount shift=0 " + trace.qemu_args(), ready_timeout=600)
    try:
        _wait_line(dev, 0, "bench: sha256 ", timeout=900)
        exact = {}
        for key, auth, _ in kinds:
            exact[key] = [_decision(dev, auth, True)[0] for _ in range(PROFILE_DECISIONS)][-1]
    finally:
        dev.stop()
        trace.finish()
    assert len(trace.windows) == len(kinds) * PROFILE_DECISIONS, len(trace.windows)
    out = {}
    for i, (key, _, what) in enumerate(kinds):
        fns = trace.by_function(trace.windows[(i + 1) * PROFILE_DECISIONS - 1])
        stages = guest_profile.groups(fns)
        total = sum(stages.values())
        group = "mps2-an385 decision by stage, %s (QEMU execution trace; %s traced, %s counted)" % (
            what, "{:,}".format(total), "{:,}".format(exact[key]))
        for stage, n in stages.most_common():
            top = sorted(((v, f) for (f, src), v in fns.items() if guest_profile.group_of(f, src) == stage),
                         reverse=True)[:4]
            row(group, "profile_%s_%s" % (key, re.sub(r"\W+", "_", stage.split(" (")[0].lower())), "  " + stage,
                n, "instr", None, "%.0f %%; %s" % (100.0 * n / total, ", ".join("%s %d" % (f, v) for v, f in top)))
        out[key] = {"traced": total, "counted": exact[key], "stages": dict(stages),
                    "functions": {f: v for (f, _), v in fns.most_common(40)}}
    figures["board_decision_profile"] = out


# ---- No stalls: 20 uploads of 1 MiB in a row on the board, captured -------------------------------

STALL_UPLOADS = 20


def _retransmissions(pcap):
    """TCP retransmissions in a capture, as tshark's analysis counts them (fast and timeout alike)."""
    r = subprocess.run(["tshark", "-r", pcap, "-Y", "tcp.analysis.retransmission", "-T", "fields",
                        "-e", "frame.time_relative", "-e", "tcp.srcport"], capture_output=True, text=True, timeout=300)
    return [l.split("\t") for l in r.stdout.splitlines() if l.strip()]


def _stall_run(dev):
    """20 uploads of 1 MiB over HTTP on a device whose link is captured: each upload's time, then /_status."""
    body = os.urandom(MIB)
    times = []
    try:
        for i in range(STALL_UPLOADS):
            t0 = time.monotonic()
            r = request(Endpoint(dev.http, False), "PUT", "/files/s.bin", body,
                        {"Authorization": "Bearer " + TOKEN}, timeout=120)
            times.append(time.monotonic() - t0)
            assert r.status in (200, 201), r
            r = request(Endpoint(dev.http, False), "DELETE", "/files/s.bin", None,
                        {"Authorization": "Bearer " + TOKEN}, timeout=60)  # room for the next, untimed
            assert r.status == 204, r
        status = request(Endpoint(dev.http, False), "GET", "/_status").json()
    finally:
        dev.stop()
    return times, status


def _frames(pcap):
    """Frames in a capture (the capture's own check: a link seen at all)."""
    r = subprocess.run(["capinfos", "-c", "-M", pcap], capture_output=True, text=True, timeout=300)
    m = re.search(r"Number of packets:\s*(\d+)", r.stdout)
    return int(m.group(1)) if m else None


def stalls(image=None):
    """20 uploads of 1 MiB in a row on each board (the product images), the link captured: p50, p95 against
    2 x p50, and the TCP retransmissions tshark finds."""
    _make("BOARD=lm3s6965evb")
    boards = (("mps2-an385", "stall", lambda dump: BoardUnderQemu(
                  image or _board_image({"token": TOKEN, "capacity": "3M"}, None), dump=dump)),
              ("lm3s6965evb", "lm3s_stall", lambda dump: Lm3sUnderQemu(LM3S_ELF, dump=dump)))
    for board, key, device in boards:
        with tempfile.TemporaryDirectory() as tmp:
            pcap = os.path.join(tmp, "link.pcap")
            times, status = _stall_run(device(pcap))
            rtx = _retransmissions(pcap)
            frames = _frames(pcap)
        s = sorted(times)
        p50, p95 = s[len(s) // 2], s[min(len(s) - 1, int(0.95 * len(s)))]
        g = "%s: %d uploads of 1 MiB in a row (QEMU, no instruction counting; link captured)" % (board, STALL_UPLOADS)
        row(g, key + "_p50_s", "upload time, p50", round(p50, 3), "s", None,
            "first %.3f s, max %.3f s" % (times[0], s[-1]))
        row(g, key + "_p95_s", "upload time, p95", round(p95, 3), "s", round(2 * p50, 3), "budget 2 x p50")
        row(g, key + "_rtx", "TCP retransmissions in the capture", len(rtx), "segments", None,
            "tshark tcp.analysis.retransmission, of %s frames; lwIP drops %s"
            % (frames, status["memory"]["lwip"].get("tcp_drop", "-")))
        figures[key + "_times_s"] = times
        figures[key + "_rtx_segments"] = rtx[:50]


# ---- Decision cost: callgrind on the host build ---------------------------------------------------

def _callgrind_decisions(auth):
    """Host instructions inside conn_on_head (head complete -> policy -> 100 or 417 queued), per request."""
    with tempfile.TemporaryDirectory() as tmp:
        dev = Device(os.path.join(tmp, "s"), ["--set", "token=" + TOKEN],
                     wrapper=["valgrind", "--tool=callgrind", "--callgrind-out-file=" + os.path.join(tmp, "cg.out"),
                              "--toggle-collect=conn_on_head"])
        try:
            body = b"x" * 100
            for i in range(DECISIONS):
                c = Conn(dev.http, timeout=30)
                c.send(b"PUT /files/d%d.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer %s\r\n"
                       b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (i, auth.encode(), len(body)))
                r = c.read_response(timeout=30)
                if r.status == 100:
                    c.send(body)
                    r = c.read_response(timeout=30)
                    assert r.status == 201, r
                else:
                    assert r.status == 417, r
                c.close()
        finally:
            dev.stop()
        m = re.search(r"Collected : (\d+)", "\n".join(dev.lines))
        assert m, "\n".join(dev.lines[-20:])
        return int(m.group(1)) / DECISIONS


def decision_cost():
    budget = 5000
    for what, auth in (("accepted: 100 Continue queued", TOKEN), ("refused: 417 queued", "wrong")):
        n = _callgrind_decisions(auth)
        row("decision (default policy)", "decision_" + what.split(":")[0], what, round(n), "x86-64 instr", budget,
            "callgrind, host build -O2, mean of %d; head complete to response queued" % DECISIONS)


# ---- Throughput on the host simulator -------------------------------------------------------------

BLOCK = b"\x5a" * 65536


def _discard(dev):
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", dev.discard), timeout=60) as s:
        for _ in range(THROUGHPUT_SIZE // len(BLOCK)):
            s.sendall(BLOCK)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
    return time.monotonic() - t


def _upload(endpoint, i):
    t = time.monotonic()
    c = Conn(endpoint, timeout=120)
    c.send(("PUT /files/bench%d.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n"
            "Expect: 100-continue\r\n\r\n" % (i, TOKEN, THROUGHPUT_SIZE)).encode())
    assert c.read_response().status == 100
    for _ in range(THROUGHPUT_SIZE // len(BLOCK)):
        c.send(BLOCK)
    r = c.read_response(timeout=120)
    assert r.status in (200, 201), r
    c.close()
    return time.monotonic() - t


def _fresh_upload(endpoint, i, expect):
    """Seconds for a 2 MiB PUT on a new connection, from connect to the answer: as a browser or a
    retry after 417 sends it (head then body, no Expect), or with Expect and its 100 Continue."""
    t = time.monotonic()
    c = Conn(endpoint, timeout=60)
    c.send(("PUT /files/fresh%d.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n%s\r\n"
            % (i, TOKEN, FRESH_SIZE, "Expect: 100-continue\r\n" if expect else "")).encode())
    if expect:
        assert c.read_response().status == 100
    for _ in range(FRESH_SIZE // len(BLOCK)):
        c.send(BLOCK)
    r = c.read_response(timeout=60)
    assert r.status in (200, 201), r
    c.close()
    return time.monotonic() - t


def _fresh_times(dev):
    """Medians of the fresh-connection upload without Expect and with it. Without, the first segment
    used to wait for the device's delayed ACK (up to 250 ms): no 100 Continue carried it."""
    ep = Endpoint(dev.http, False)
    with_expect = statistics.median(_fresh_upload(ep, i % 2, True) for i in range(FRESH_RUNS))
    without = statistics.median(_fresh_upload(ep, i % 2, False) for i in range(FRESH_RUNS))
    return without, with_expect


def _policy_without_digest(tmp):
    """The default policy, its final accept with digest = false: the upload path without SHA-256."""
    src = open(os.path.join(ROOT, "scripts", "policy.lua")).read()
    head, sep, tail = src.rpartition("  return true\nend\n\nfunction self_test()")
    assert sep, "scripts/policy.lua changed shape: no final accept before self_test"
    path = os.path.join(tmp, "nodigest.lua")
    with open(path, "w") as f:
        f.write(head + NO_DIGEST_TAIL + tail)
    return path


def _sha256_alone_s(tmp):
    """Seconds for the host build's SHA-256 (digest.c on mbedTLS, -O2) over THROUGHPUT_SIZE bytes."""
    exe = os.path.join(tmp, "sha256_rate")
    mbed = os.path.join(ROOT, "build", "deps", "mbedtls")
    srcs = [os.path.join(HERE, "sha256_rate.c"), os.path.join(ROOT, "src", "digest.c"), os.path.join(ROOT, "src", "text.c")]
    srcs += [os.path.join(mbed, "library", n) for n in ("sha256.c", "md.c", "base64.c", "platform_util.c",
                                                        "constant_time.c")]
    subprocess.run(["gcc", "-std=c11", "-O2", "-D_GNU_SOURCE", "-DMBEDTLS_CONFIG_FILE=\"postern_mbedtls_config.h\"",
                    "-I" + os.path.join(ROOT, "src"), "-I" + os.path.join(ROOT, "port"),
                    "-I" + os.path.join(ROOT, "port", "include"), "-I" + os.path.join(ROOT, "port", "mbedtls"),
                    "-I" + os.path.join(ROOT, "boards", "host"), "-I" + os.path.join(mbed, "include"),
                    "-I" + os.path.join(ROOT, "build", "deps", "lwip", "src", "include"),
                    "-I" + os.path.join(ROOT, "build", "deps", "lua", "src"), "-I" + os.path.join(ROOT, "port", "lua"),
                    "-DPOSTERN_TLS=0", "-DPOSTERN_IPV6=1", "-o", exe] + srcs, check=True, capture_output=True, text=True)
    runs = [float(subprocess.run([exe, str(THROUGHPUT_SIZE // MIB)], capture_output=True, text=True,
                                 check=True).stdout.split()[0]) for _ in range(THROUGHPUT_RUNS)]
    return statistics.median(runs)


def throughput():
    with tempfile.TemporaryDirectory() as tmp:
        sha = _sha256_alone_s(tmp)
        results = {}
        for key, policy in (("digest", None), ("nodigest", _policy_without_digest(tmp))):
            dev = Device(os.path.join(tmp, "storage-" + key), ["--set", "token=" + TOKEN, "--capacity", "512M",
                                                               "--cert", os.path.join(CERTS, "server.crt"),
                                                               "--key", os.path.join(CERTS, "server.key")]
                         + (["--policy", policy] if policy else []))
            try:
                # Interleaved: a discard, an upload, a TLS upload, and again, so that what else the shared
                # machine does at some moment falls on every kind alike, not on one series.
                runs = {"d": [], "u": [], "s": []}
                for i in range(THROUGHPUT_RUNS):
                    runs["d"].append(_discard(dev))
                    runs["u"].append(_upload(Endpoint(dev.http, False), i % 2))
                    runs["s"].append(_upload(Endpoint(dev.https, True), i % 2))
                r = results[key] = {k: statistics.median(v) for k, v in runs.items()}
                if key == "digest":
                    fresh, fresh_expect = _fresh_times(dev)
            finally:
                dev.stop()
    mib = THROUGHPUT_SIZE / MIB
    wd, nd = results["digest"], results["nodigest"]
    d = min(wd["d"], nd["d"])  # the same sink in both runs: the faster is the limit
    note = "host simulator over libslirp, 64 MiB, median of %d, interleaved" % THROUGHPUT_RUNS
    g = "upload path (host)"
    row(g, "discard_mib_s", "raw TCP discard sink (port 9): the limit", round(mib / d, 1), "MiB/s", None, note)
    row(g, "sha256_alone_mib_s", "SHA-256 alone (digest.c on mbedTLS, -O2)", round(mib / sha, 1), "MiB/s", None,
        "64 MiB in 64 KiB spans, median of %d" % THROUGHPUT_RUNS)
    row(g, "put_nodigest_mib_s", "PUT, digest = false (policy's answer)", round(mib / nd["u"], 1), "MiB/s", None, note)
    row(g, "put_http_mib_s", "PUT with SHA-256 (default policy)", round(mib / wd["u"], 1), "MiB/s", None, note)
    row(g, "put_https_mib_s", "the same over HTTPS", round(mib / wd["s"], 1), "MiB/s", None, note)
    row(g, "put_nodigest_ratio", "upload without digest / discard", round(d / nd["u"], 2), "ratio", 0.90,
        "time of the discard / time of the upload, same bytes", at_least=True)
    row(g, "put_http_ratio", "upload with SHA-256 / (discard + SHA-256 alone)", round((d + sha) / wd["u"], 2),
        "ratio", 0.90, "SHA-256 alone %.0f ms, discard %.0f ms, upload %.0f ms" % (sha * 1e3, d * 1e3, wd["u"] * 1e3),
        at_least=True)
    row(g, "put_https_ratio", "HTTPS upload / discard", round(d / wd["s"], 2), "ratio", None,
        "no budget; digest = false over HTTPS: %.2f" % (d / nd["s"]))
    row("upload path (host)", "put_fresh_no_expect_ratio", "fresh 2 MiB PUT: no Expect / Expect time",
        round(fresh / fresh_expect, 2), "ratio", 1.5, "%.0f ms / %.0f ms, a new connection each, median of %d"
        % (fresh * 1000, fresh_expect * 1000, FRESH_RUNS))


# ---- The board's storage on timed flash ---------------------------------------------------------

FLASH_PROFILES = {"instant": None, "nor": (45000, 50), "slow": (1000000, 50)}  # erase us, us per 16-byte unit


def _flash_upload(profile):
    """A 1 MiB PUT on the mps2-an385 with FLASH_TIMING=profile while a second client polls GET /_status.

    Returns (seconds for the upload, its status, /_status latencies in seconds)."""
    dev = QemuDevice(_board_image({"token": TOKEN, "capacity": "3M", "flash_timing": profile}, None))
    try:
        body = os.urandom(MIB)
        out = {}

        def upload():
            t0 = time.monotonic()
            c = Conn(dev.http, timeout=600)
            c.send(("PUT /files/f.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
                    % (TOKEN, len(body))).encode() + body)
            out["status"] = c.read_response(timeout=600).status
            out["s"] = time.monotonic() - t0
            c.close()

        t = threading.Thread(target=upload)
        t.start()
        lat = []
        while t.is_alive():
            t0 = time.monotonic()
            request(Endpoint(dev.http, False), "GET", "/_status", None, None, timeout=30)
            lat.append(time.monotonic() - t0)
            time.sleep(0.02)
        t.join()
        return out.get("s"), out.get("status"), sorted(lat)
    finally:
        dev.stop()


def flash_timing():
    """Upload throughput and GET /_status latency on the board's instant, nor and slow flash (FLASH_TIMING)."""
    group = "mps2-an385 storage on timed flash (1 MiB PUT under QEMU)"
    for profile, timing in FLASH_PROFILES.items():
        secs, status, lat = _flash_upload(profile)
        limit = "no limit" if timing is None else "medium: %.0f KiB/s of programs, %d ms per erase" % (
            16 / (timing[1] * 1e-6) / KIB, timing[0] // 1000)
        row(group, "flash_%s_put_kib_s" % profile, "PUT throughput, FLASH_TIMING=%s" % profile,
            round(MIB / KIB / secs) if secs and status == 201 else None, "KiB/s", None,
            "status %s; %s" % (status, limit))
        if profile != "instant" and lat:
            p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            row(group, "flash_%s_status_p50_ms" % profile, "  GET /_status meanwhile, p50", round(p50 * 1e3, 1), "ms")
            row(group, "flash_%s_status_p99_ms" % profile, "  GET /_status meanwhile, p99", round(p99 * 1e3, 1), "ms", 300,
                "%d requests" % len(lat))


# ---- A slow medium on the host simulator ----------------------------------------------------------

def storage_timing():
    """A 1 MiB upload onto a medium busy 200 ms per 4 KiB erased (--storage-latency 200): how fast GET /_status
    answers meanwhile (one kept-alive connection, every 50 ms), and the upload's rate against the medium's own
    limit, 4 KiB per 200 ms = 20 KiB/s. Below it, TCP segments were dropped and resent instead of the window
    closing while a write waited."""
    latency, unit, size = 200, 4 * KIB, MIB
    limit_kib_s = unit / KIB / (latency / 1000.0)
    body = os.urandom(size)
    times, result = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        storage = os.path.join(tmp, "storage")
        dev = Device(storage, ["--set", "token=" + TOKEN, "--capacity", "8M", "--storage-latency", str(latency)])
        try:
            def upload():
                t = time.monotonic()
                c = Conn(dev.http, timeout=300)
                c.send(("PUT /files/slow.bin HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer %s\r\n"
                        "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (TOKEN, size)).encode())
                assert c.read_response().status == 100
                c.send(body)
                result["status"] = c.read_response(timeout=300).status
                result["s"] = time.monotonic() - t
                c.close()

            up = threading.Thread(target=upload, daemon=True)
            t0 = time.monotonic()
            up.start()
            probe = Conn(dev.http, timeout=5)
            while up.is_alive() and time.monotonic() - t0 < 240:
                t = time.monotonic()
                probe.send(b"GET /_status HTTP/1.1\r\nHost: d\r\n\r\n")
                assert probe.read_response(timeout=5).status == 200
                times.append(time.monotonic() - t)
                time.sleep(0.05)
            probe.close()
            done = bytes_done = size
            if up.is_alive():  # cut short at 240 s: the rate from what reached the medium
                done = None
                bytes_done = max([os.path.getsize(os.path.join(storage, n)) for n in os.listdir(storage)
                                  if n.startswith(".upload-")] or [0])
            elapsed = result.get("s", time.monotonic() - t0)
        finally:
            dev.stop()
    times.sort()
    p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(0.99 * len(times)))]
    rate = bytes_done / KIB / elapsed
    group = "slow medium (host, --storage-latency %d)" % latency
    note = "1 MiB PUT, %d requests on one connection" % len(times)
    row(group, "slow_status_p50_ms", "GET /_status during the upload, p50", round(p50 * 1000, 1), "ms", None, note)
    row(group, "slow_status_p99_ms", "GET /_status during the upload, p99", round(p99 * 1000, 1), "ms", 100, note)
    row(group, "slow_upload_kib_s", "upload rate", round(rate, 1), "KiB/s", None,
        "%s in %.1f s; the medium's limit %.0f KiB/s" % ("1 MiB" if done else "cut short: %d bytes" % bytes_done,
                                                        elapsed, limit_kib_s))
    row(group, "slow_upload_ratio", "upload rate / the medium's limit", round(rate / limit_kib_s, 2), "ratio", 0.9,
        "below: segments dropped and resent while a write waited", at_least=True)


# ---- Output ----------------------------------------------------------------------------------------

def attacks():
    """The attack tests (tests/e2e/test_attack_*.py) on the host and the board, each beside a legitimate
    client: what share of its uploads were served and the longest silence of GET /_status."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "attacks.jsonl")
        env = dict(os.environ, POSTERN_ATTACK_FIGURES=out, POSTERN_TARGETS="host,host-https,mps2,mps2-https")
        tests = sorted(os.path.join(ROOT, "tests", "e2e", n) for n in os.listdir(os.path.join(ROOT, "tests", "e2e"))
                       if n.startswith("test_attack_") and n.endswith(".py"))
        r = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider"] + tests,
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
        print(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-500:])
        seen = {}
        for line in open(out) if os.path.exists(out) else []:
            fig = json.loads(line)
            seen[fig["test"]] = fig  # the last record of a test is its final one
    for test, fig in sorted(seen.items()):
        name = test.split("::")[-1]
        group = "one client attacks, a legitimate client is served"
        row(group, "attack_served_" + re.sub(r"\W+", "_", name), name, round(100 * fig["served"]), "% served", 95,
            "%d uploads; longest /_status silence %.2f s (budget %s)" % (fig["uploads"], fig["gap_s"],
                                                                       "1 s" if fig["board"] == "host" else "none"),
            at_least=True)
        if "pbufs_held" in fig:
            row(group, "attack_pbufs_" + fig["board"], "  pool pbufs one dripping connection holds (%s)" % fig["board"],
                fig["pbufs_held"], "pbufs", 2)


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.2f" % v if v < 10 else "%.1f" % v
    return "{:,}".format(v)


def report():
    os.makedirs(OUT_DIR, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = "%s, %d cores, %s" % (platform.machine(), os.cpu_count() or 0, platform.platform())
    lines = ["postern figures, %s, %s" % (stamp, machine), ""]
    md = ["Measured %s on %s (`make bench`)." % (stamp, machine), "",
          "| figure | value | unit | budget | | note |", "| --- | --: | --- | --- | --- | --- |"]
    w = max(len(r[1]) for r in rows)
    group = None
    for g, figure, value, unit, budget, within, note in rows:
        if g != group:
            lines.append(g)
            md.append("| **%s** | | | | | |" % g)
            group = g
        verdict = "" if within is None else ("ok" if within else "OVER")
        lines.append("  %-*s %12s %-13s %10s %-4s  %s" % (w, figure, _fmt(value), unit, budget, verdict, note))
        md.append("| %s | %s | %s | %s | %s | %s |" % (figure.strip(), _fmt(value), unit, budget.replace(">=", "≥")
                                                        .replace("<=", "≤"), verdict, note))
    print("\n".join(lines))
    with open(os.path.join(OUT_DIR, "figures.json"), "w") as f:
        json.dump({"measured": stamp, "machine": machine, "figures": figures}, f, indent=2)
    with open(os.path.join(OUT_DIR, "figures.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\nwritten: build/bench/figures.json, build/bench/figures.md")


SECTIONS = {"footprint": footprint, "ram": board_ram, "board": board_instructions, "profile": decision_profile,
            "decision": decision_cost,
            "host": throughput, "slow": storage_timing, "flash": flash_timing, "stalls": stalls, "attacks": attacks}


def main():
    """figures.py [SECTION ...]: every section, or only those named (e.g. `figures.py board stalls`)."""
    t0 = time.monotonic()
    wanted = sys.argv[1:] or list(SECTIONS)
    unknown = [w for w in wanted if w not in SECTIONS]
    if unknown:
        sys.exit("figures.py: no section %s (sections: %s)" % (", ".join(unknown), " ".join(SECTIONS)))
    for name in wanted:
        SECTIONS[name]()
    report()
    print("bench: %.0f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
