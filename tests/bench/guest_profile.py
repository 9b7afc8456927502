"""guest_profile.py: where a board's guest instructions go, from QEMU's execution trace.

QEMU (-icount shift=0 -d in_asm,exec,nochain) logs each translation block once
with its instructions (in_asm) and each execution of a block (exec; nochain
makes every execution visible). A reader thread takes that log through a FIFO
while the device runs, and counts, between two marker functions of the image,
how many times each block ran. A block's length is the longest translation
seen at its address (icount may retranslate a block shorter, so a count is an
estimate within a few per cent: figures.py's exact counts come from the
board's own clock). Symbols and their source files come from
`arm-none-eabi-nm -l`.
"""
import bisect
import collections
import os
import re
import subprocess
import tempfile
import threading

TRACE_ARGS = "-d in_asm,exec,nochain -D %s"
_EXEC = re.compile(r"Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")


class Symbols:
    """The image's functions: start address, name and source file."""

    def __init__(self, elf):
        out = subprocess.run(["arm-none-eabi-nm", "-n", "-l", elf], capture_output=True, text=True,
                             check=True).stdout
        entries = []
        for line in out.splitlines():
            p = line.split()
            if len(p) >= 3 and p[1] in "tTwW":
                entries.append((int(p[0], 16) & ~1, p[2], p[3].rsplit(":", 1)[0] if len(p) > 3 else ""))
        entries.sort()
        self.addrs = [a for a, _, _ in entries]
        self.entries = entries

    def address(self, name):
        return next(a for a, n, _ in self.entries if n == name)

    def at(self, pc):
        """(name, source file) of the function holding pc."""
        i = bisect.bisect_right(self.addrs, pc) - 1
        return self.entries[i][1:] if i >= 0 else ("?", "")


class Trace:
    """Counts block executions between begin and end markers (a begin restarts the window) while QEMU runs."""

    def __init__(self, symbols, begin, end):
        self.sym = symbols
        self.begin, self.end = symbols.address(begin), symbols.address(end)
        self.dir = tempfile.mkdtemp(prefix="postern-trace-")
        self.fifo = os.path.join(self.dir, "trace")
        os.mkfifo(self.fifo)
        self.size = {}
        self.windows = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def qemu_args(self):
        return TRACE_ARGS % self.fifo

    def _read(self):
        block, start, window = None, None, None
        with open(self.fifo, errors="replace") as f:
            for line in f:
                if line.startswith("IN:"):
                    block = 0
                    continue
                if block is not None and line.startswith("0x"):
                    pc = int(line[2:10], 16)
                    if block == 0:
                        start = pc
                    block += 1
                    if block > self.size.get(start, 0):
                        self.size[start] = block
                    continue
                block = None
                if not line.startswith("Trace"):
                    continue
                m = _EXEC.match(line)
                if m is None:
                    continue
                pc = int(m.group(1), 16)
                if pc == self.begin:
                    window = collections.Counter()
                elif pc == self.end and window is not None:
                    self.windows.append(window)
                    window = None
                elif window is not None:
                    window[pc] += 1

    def finish(self):
        """Waits for the log's end (QEMU has exited) and removes the FIFO."""
        self.thread.join(timeout=120)
        os.remove(self.fifo)
        os.rmdir(self.dir)

    def by_function(self, window):
        """{(function, source file): instructions} of one window."""
        out = collections.Counter()
        for pc, n in window.items():
            out[self.sym.at(pc)] += n * self.size.get(pc, 1)
        return out


def group_of(name, source):
    """The stage of the data path a function belongs to, from its source file."""
    s = source.replace("\\", "/")
    if "/deps/lua/" in s:
        return "Lua VM"
    if "/deps/lwip/" in s or "lan9118" in s or "stellaris_eth" in s:
        return "lwIP and the Ethernet driver"
    if "/deps/mbedtls/" in s:
        return "mbedTLS"
    for f in ("src/http_parser.c", "src/text.c"):
        if s.endswith(f):
            return "head parser"
    for f in ("src/policy.c", "src/policy_pattern.c", "port/lua_arena.c", "port/arena.c", "port/lua_math.c"):
        if s.endswith(f):
            return "policy bridge (req view, helpers, sandbox, arena)"
    for f in ("src/http_answer.c", "src/http_response.c", "src/log.c", "src/http_status.c"):
        if s.endswith(f):
            return "answer head, JSON and log line"
    if "/src/http_" in s or s.endswith(("src/conditional.c", "src/listen.c", "src/chunked.c", "src/digest.c")):
        return "request handling (routing, preconditions, upload open)"
    if "storage_" in s or "flash_model" in s or "sd_spi" in s:
        return "storage"
    if "newlib" in s or name in ("memcpy", "memset", "strlen", "strcmp", "memcmp", "memchr", "strchr", "strncmp"):
        return "C library (memcpy, strlen, ...)"
    return "board (clock, console, bench marks)"


def groups(by_function):
    out = collections.Counter()
    for (name, source), n in by_function.items():
        out[group_of(name, source)] += n
    return out
