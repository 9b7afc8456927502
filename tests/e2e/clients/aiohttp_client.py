#!/usr/bin/python3
"""aiohttp_client.py: drives postern with aiohttp (3.8), as an application would, and prints one JSON
line of what the application saw.

    aiohttp_client.py SCENARIO URL AUTH [FILE]

URL is a file's URL (http://127.0.0.1:PORT/files/NAME or https://...), AUTH the Authorization
header's value ("" for none), FILE the body. POSTERN_CA names the CA for HTTPS. Scenarios:

  put-expect        PUT FILE with expect100=True (aiohttp sends "Expect: 100-continue" and waits)
  put               PUT FILE with Content-Length, no Expect
  put-chunked       PUT FILE chunked (no length), no Expect
  put-expect-retry  put-expect; after a 417 without "Connection: close" the same PUT again without
                    Expect, on the same session (so on the kept-alive connection when there is one)
  keepalive         GET /_status, PUT FILE, GET URL on one session
"""
import asyncio
import hashlib
import json
import os
import ssl
import sys
import time
from urllib.parse import urlsplit

import aiohttp


async def one(session, method, url, auth, payload=None, expect=False, chunked=False):
    step = {"method": method, "status": None, "body": "", "error": None, "connection": None,
            "reused": None, "got_100": None, "sent_expect": expect}
    events = session._postern_events
    events.clear()
    headers = {"Authorization": auth} if auth else {}
    data = payload
    if payload is not None and chunked:
        async def pieces():
            for off in range(0, len(payload), 65536):
                yield payload[off:off + 65536]
        data = pieces()
    started = time.monotonic()
    try:
        async with session.request(method, url, data=data, headers=headers, expect100=expect) as resp:
            body = await resp.read()
            step["status"] = resp.status
            step["connection"] = resp.headers.get("Connection")
            step["body_len"] = len(body)
            step["body_sha256"] = hashlib.sha256(body).hexdigest()
            step["body"] = body[:4096].decode("utf-8", "replace")
    except Exception as e:  # what the application would catch
        step["error"] = "%s: %s" % (type(e).__name__, e)
    step["elapsed"] = time.monotonic() - started
    if "reuse" in events:
        step["reused"] = True
    elif "create" in events:
        step["reused"] = False
    return step


async def main(argv):
    if len(argv) < 4:
        print("usage: aiohttp_client.py SCENARIO URL AUTH [FILE]", file=sys.stderr)
        return 2
    scenario, url, auth = argv[1], argv[2], argv[3]
    payload = open(argv[4], "rb").read() if len(argv) > 4 else None
    ctx = ssl.create_default_context(cafile=os.environ["POSTERN_CA"]) if os.environ.get("POSTERN_CA") else None

    events = []
    trace = aiohttp.TraceConfig()

    async def on_create(session, ctx_, params):
        events.append("create")

    async def on_reuse(session, ctx_, params):
        events.append("reuse")

    trace.on_connection_create_end.append(on_create)
    trace.on_connection_reuseconn.append(on_reuse)
    connector = aiohttp.TCPConnector(limit=1, ssl=ctx if ctx is not None else False)
    timeout = aiohttp.ClientTimeout(total=120)
    steps = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trace_configs=[trace]) as session:
        session._postern_events = events
        if scenario == "put-expect":
            steps.append(await one(session, "PUT", url, auth, payload, expect=True))
        elif scenario == "put":
            steps.append(await one(session, "PUT", url, auth, payload))
        elif scenario == "put-chunked":
            steps.append(await one(session, "PUT", url, auth, payload, chunked=True))
        elif scenario == "put-expect-retry":
            first = await one(session, "PUT", url, auth, payload, expect=True)
            steps.append(first)
            if first["status"] == 417 and first["connection"] is None:
                steps.append(await one(session, "PUT", url, auth, payload))
        elif scenario == "keepalive":
            u = urlsplit(url)
            steps.append(await one(session, "GET", "%s://%s/_status" % (u.scheme, u.netloc), ""))
            steps.append(await one(session, "PUT", url, auth, payload))
            steps.append(await one(session, "GET", url, auth))
        else:
            print("unknown scenario " + scenario, file=sys.stderr)
            return 2
    last = steps[-1]
    print(json.dumps({"client": "aiohttp", "scenario": scenario, "status": last["status"], "body": last["body"],
                      "error": last["error"], "steps": steps}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv)))
