"""chromium_cdp.py: runs headless Chromium with browser.html and calls its posternRun() through the
DevTools protocol over a pipe (--remote-debugging-pipe: no debugging port is opened).

    with Chromium(tmpdir, spki=...) as browser:
        result = browser.run({"api": "fetch", "scenario": "put", "url": ..., "auth": ..., "size": 1024})

Each run awaits the page's promise, so nothing depends on virtual time or a guessed delay.
"""
import json
import os
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = os.path.join(HERE, "browser.html")


class Chromium:
    def __init__(self, workdir, spki=None, binary="chromium"):
        """spki: base64 SHA-256 of the device's public key, trusted for HTTPS (Chromium has no --cacert)."""
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-features=Translate,MediaRouter",
                "--disable-web-security", "--allow-file-access-from-files",
                "--user-data-dir=" + os.path.join(workdir, "profile"), "--remote-debugging-pipe"]
        if spki:
            args.append("--ignore-certificate-errors-spki-list=" + spki)
        args.append("about:blank")
        # fd 3 carries commands into the browser, fd 4 its answers: the shell maps them onto the pipes.
        cmd = ["sh", "-c", 'exec "$@" 3<&0 4>&1 0</dev/null 1>&2', "sh"] + args
        self.log = open(os.path.join(workdir, "chromium.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self.next_id = 0
        self.pending = {}
        self.cond = threading.Condition()
        self.buf = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        target = self.call("Target.createTarget", {"url": "file://" + PAGE})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        deadline = time.monotonic() + 30
        while self.evaluate("typeof window.posternRun") != "function":
            if time.monotonic() > deadline:
                raise AssertionError("browser.html did not load:\n" + self.log_text())
            time.sleep(0.05)

    def _read(self):
        while True:
            data = self.proc.stdout.read1(65536)
            if not data:
                break
            self.buf += data
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self.cond:
                        self.pending[msg["id"]] = msg
                        self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def call(self, method, params=None, session=None, timeout=30):
        with self.cond:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.proc.stdin.write(json.dumps(msg).encode() + b"\0")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        with self.cond:
            while mid not in self.pending:
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError("no DevTools answer to %s:\n%s" % (method, self.log_text()))
                self.cond.wait(left)
            answer = self.pending.pop(mid)
        if "error" in answer:
            raise AssertionError("DevTools %s: %s" % (method, answer["error"]))
        return answer["result"]

    def evaluate(self, expression, timeout=30):
        r = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True},
                      session=self.session, timeout=timeout)
        if "exceptionDetails" in r:
            raise AssertionError("page: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    def run(self, params, timeout=120):
        """posternRun(params) in the page; returns its JSON result as a dict."""
        return json.loads(self.evaluate("posternRun(%s)" % json.dumps(params), timeout=timeout))

    def log_text(self):
        try:
            return open(os.path.join(self.workdir, "chromium.log"), errors="replace").read()[-3000:]
        except OSError:
            return ""

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", timeout=5)
            except AssertionError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # this browser only, by its PID
                self.proc.wait()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
