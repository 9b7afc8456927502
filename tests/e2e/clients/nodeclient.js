#!/usr/bin/env node
// nodeclient.js: drives postern with Node's http/https module or its global fetch (undici), as an
// application would, and prints one JSON line of what the application saw.
//
//   node nodeclient.js http|fetch SCENARIO URL AUTH [FILE]
//
// URL is a file's URL (http://127.0.0.1:PORT/files/NAME or https://...), AUTH the Authorization
// header's value ("" for none), FILE the body. For HTTPS, POSTERN_CA names the CA (the http module
// takes it as `ca`; fetch needs NODE_EXTRA_CA_CERTS, which the caller sets). Scenarios:
//
//   put-expect        PUT FILE with "Expect: 100-continue"; the body goes on the 'continue' event
//   put               PUT FILE with Content-Length, no Expect
//   put-chunked       PUT FILE chunked (no length), no Expect
//   put-expect-retry  put-expect; after a 417 without "Connection: close" the same PUT again without
//                     Expect, through the same keep-alive agent
//   keepalive         GET /_status, PUT FILE, GET URL through one keep-alive agent
//   hold-idle         (http) 4 GET /_status at once through a keep-alive agent, so 4 sockets sit idle;
//                     prints a line, waits for a line on stdin, then 4 more and prints again
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const https = require('https');
const readline = require('readline');

const [api, scenario, url, auth, file] = process.argv.slice(2);
if (!api || !scenario || !url || auth === undefined) {
  console.error('usage: node nodeclient.js http|fetch SCENARIO URL AUTH [FILE]');
  process.exit(2);
}
const body = file ? fs.readFileSync(file) : null;
const ca = process.env.POSTERN_CA ? fs.readFileSync(process.env.POSTERN_CA) : undefined;
const origin = new URL(url).origin;
const SOCKET_ID = Symbol('socket id');
let sockets = 0;

function describe(step, status, headers, data) {
  step.status = status;
  step.connection = headers.connection === undefined ? null : String(headers.connection);
  step.body_len = data.length;
  step.body_sha256 = crypto.createHash('sha256').update(data).digest('hex');
  step.body = data.subarray(0, 4096).toString('utf8');
  return step;
}

function errorText(e) {
  // fetch wraps the cause ("fetch failed"); keep both, as the application would log them.
  let s = e.message || String(e);
  if (e.code) s += ' (' + e.code + ')';
  if (e.cause) s += ': ' + errorText(e.cause);
  return s;
}

// One request with the http/https module.
function viaHttp(agent, method, target, { expect = false, chunked = false, payload = null } = {}) {
  return new Promise((resolve) => {
    const step = { method, status: null, body: '', error: null, connection: null, reused: null,
                   socket: null, got_100: false, sent_expect: expect, late_error: null };
    const started = process.hrtime.bigint();
    const headers = {};
    if (auth) headers.Authorization = auth;
    if (payload && !chunked) headers['Content-Length'] = payload.length;
    if (expect) headers.Expect = '100-continue';
    const mod = target.startsWith('https:') ? https : http;
    const req = mod.request(target, { method, headers, agent, ca });
    let settled = false;
    const done = () => {
      if (!settled) {
        settled = true;
        step.elapsed = Number(process.hrtime.bigint() - started) / 1e9;
        resolve(step);
      }
    };
    req.on('socket', (s) => {
      if (!s[SOCKET_ID]) s[SOCKET_ID] = ++sockets;
      step.socket = s[SOCKET_ID];
      step.reused = req.reusedSocket;
    });
    const send = () => {
      if (!payload) return req.end();
      if (!chunked) return req.end(payload);
      for (let off = 0; off < payload.length; off += 65536) req.write(payload.subarray(off, off + 65536));
      req.end();
    };
    req.on('continue', () => { step.got_100 = true; send(); });
    req.on('response', (res) => {
      if (expect && !step.got_100) req.end(); // refused before the body: end the request without it
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => { describe(step, res.statusCode, res.headers, Buffer.concat(parts)); done(); });
      res.on('error', (e) => { step.error = errorText(e); done(); });
    });
    req.on('error', (e) => {
      if (step.status === null && !settled) step.error = errorText(e);
      else step.late_error = errorText(e);
      done();
    });
    req.setTimeout(120000, () => req.destroy(new Error('timeout')));
    if (!expect) send();
    else req.flushHeaders();
  });
}

// One request with fetch (undici).
async function viaFetch(method, target, { expect = false, chunked = false, payload = null } = {}) {
  const step = { method, status: null, body: '', error: null, connection: null, reused: null,
                 got_100: null, sent_expect: expect };
  const started = process.hrtime.bigint();
  const headers = {};
  if (auth) headers.Authorization = auth;
  if (expect) headers.Expect = '100-continue';
  const init = { method, headers };
  if (payload) {
    if (chunked) {
      let off = 0;
      init.body = new ReadableStream({
        pull(ctl) {
          if (off >= payload.length) return ctl.close();
          ctl.enqueue(new Uint8Array(payload.subarray(off, off + 65536)));
          off += 65536;
        },
      });
      init.duplex = 'half';
    } else {
      init.body = payload;
    }
  }
  try {
    const res = await fetch(target, init);
    const data = Buffer.from(await res.arrayBuffer());
    describe(step, res.status, { connection: res.headers.get('connection') ?? undefined }, data);
  } catch (e) {
    step.error = errorText(e);
  }
  step.elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  return step;
}

async function main() {
  const agent = new (url.startsWith('https:') ? https : http).Agent({ keepAlive: true, maxSockets: 1 });
  const one = (method, target, opts) => (api === 'fetch' ? viaFetch(method, target, opts)
                                                          : viaHttp(agent, method, target, opts));
  const steps = [];
  switch (scenario) {
    case 'put-expect':
      steps.push(await one('PUT', url, { expect: true, payload: body }));
      break;
    case 'put':
      steps.push(await one('PUT', url, { payload: body }));
      break;
    case 'put-chunked':
      steps.push(await one('PUT', url, { chunked: true, payload: body }));
      break;
    case 'put-expect-retry': {
      const first = await one('PUT', url, { expect: true, payload: body });
      steps.push(first);
      if (first.status === 417 && first.connection === null) steps.push(await one('PUT', url, { payload: body }));
      break;
    }
    case 'keepalive':
      steps.push(await one('GET', origin + '/_status'));
      steps.push(await one('PUT', url, { payload: body }));
      steps.push(await one('GET', url));
      break;
    case 'hold-idle': {
      const pool = new (url.startsWith('https:') ? https : http).Agent({ keepAlive: true, maxSockets: 4 });
      const round = () => Promise.all([0, 1, 2, 3].map(() => viaHttp(pool, 'GET', origin + '/_status')));
      console.log(JSON.stringify({ client: 'node-http', scenario, phase: 1, steps: await round() }));
      const rl = readline.createInterface({ input: process.stdin });
      await new Promise((r) => rl.once('line', r));
      rl.close();
      const again = await round();
      console.log(JSON.stringify({ client: 'node-http', scenario, phase: 2, steps: again,
                                   status: again[3].status, body: again[3].body, error: again[3].error }));
      pool.destroy();
      return;
    }
    default:
      console.error('unknown scenario ' + scenario);
      process.exit(2);
  }
  const last = steps[steps.length - 1];
  console.log(JSON.stringify({ client: 'node-' + api, scenario, status: last.status, body: last.body,
                               error: last.error, steps }));
  agent.destroy();
}

main().catch((e) => { console.error(e); process.exit(2); });
