"""httpwire.py: a raw-socket HTTP/1.1 client for the end-to-end tests: exact bytes out, exact bytes in."""
import json
import socket
import ssl
import time


def check_json(status, headers, body):
    """Every JSON answer the device sends must parse whole, and an error must have the seed's shape:
    a cut or malformed document fails whichever test received it."""
    if headers.get("content-type") != "application/json" or not body:
        return
    doc = json.loads(body.decode("utf-8"))
    if status >= 400:
        assert isinstance(doc, dict) and set(doc) == {"error", "message"}, doc
        assert isinstance(doc["error"], str) and isinstance(doc["message"], str), doc


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (last wins)
        self.body = body
        self.raw_head = raw_head

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:200])


class Conn:
    """One connection (TCP, or TLS over it); reads responses off it one at a time.

    `where` is a loopback port number or an Endpoint (tests/conftest.py), which may speak TLS.
    A TLS peer that went away shows up as it would on TCP: EOFError on reads, BrokenPipeError on writes."""

    def __init__(self, where, timeout=10, tls=None):
        """tls: an ssl.SSLContext to speak HTTPS to a port number (an Endpoint brings its own)."""
        if isinstance(where, int):
            self.sock = socket.create_connection(("127.0.0.1", where), timeout=timeout)
            if tls is not None:
                self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        else:
            self.sock = where.connect(timeout)
        self.buf = b""

    def send(self, data):
        try:
            self.sock.sendall(data)
        except ssl.SSLError as e:
            raise BrokenPipeError("TLS peer gone: %s" % e) from e

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(65536)
        except ssl.SSLError as e:  # a FIN without close_notify, or an alert
            raise EOFError("TLS connection ended: %s" % e) from e
        if not chunk:
            raise EOFError("connection closed; %d bytes unread: %r" % (len(self.buf), self.buf[:200]))
        self.buf += chunk

    def read_response(self, timeout=10, head_request=False):
        """Reads one response (a 1xx is returned on its own)."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        raw_head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw_head.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        assert version == "HTTP/1.1", lines[0]
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        status = int(status)
        body = b""
        if status >= 200 and status != 204 and not head_request:
            n = int(headers.get("content-length", "0"))
            while len(self.buf) < n:
                self._fill(deadline)
            body, self.buf = self.buf[:n], self.buf[n:]
        check_json(status, headers, body)
        return Response(status, reason, headers, body, raw_head)

    def nothing_more(self, wait=1.0):
        """True when the peer sends nothing else and closes (or stays silent) within `wait`."""
        deadline = time.monotonic() + wait
        try:
            while time.monotonic() < deadline:
                self._fill(deadline)
        except (EOFError, socket.timeout, ConnectionResetError):
            pass
        return self.buf == b""

    def closed_by_peer(self, wait=5.0):
        """Waits for the peer's FIN (after any bytes). True when it came."""
        deadline = time.monotonic() + wait
        try:
            while time.monotonic() < deadline:
                self._fill(deadline)
        except EOFError:
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return False

    def close(self):
        self.sock.close()


def request(where, method, path, body=b"", headers=None, timeout=10, tls=None):
    """One request on a fresh connection (to a port or an Endpoint); returns the final response."""
    c = Conn(where, timeout, tls)
    try:
        h = {"Host": "device"}
        if body is not None and method in ("PUT", "POST"):
            h["Content-Length"] = str(len(body))
        h.update(headers or {})
        head = "%s %s HTTP/1.1\r\n" % (method, path)
        head += "".join("%s: %s\r\n" % kv for kv in h.items() if kv[1] is not None)
        c.send(head.encode() + b"\r\n" + (body or b""))
        r = c.read_response(timeout, head_request=(method == "HEAD"))
        while r.status < 200:
            r = c.read_response(timeout, head_request=(method == "HEAD"))
        return r
    finally:
        c.close()
