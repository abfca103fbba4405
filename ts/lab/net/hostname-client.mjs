#!/usr/bin/env node
// The lab's client, run inside a source namespace with plain `node` (fast start, no tsx):
//
//   node hostname-client.mjs request JSON   many short requests; prints one JSON array of results
//   node hostname-client.mjs stream JSON    one long-lived TCP connection echoing lines; prints JSON
//                                           events, one a line; stops when stdin says "stop" or ends
//   node hostname-client.mjs transfer JSON  one bulk TCP transfer (download or upload of N bytes),
//                                           checked by SHA-256 on both ends; prints one JSON result
//
// Every request is its own connection (or UDP socket), so it has its own source port and is its own
// flow for the load balancer. Errors are classified so that a caller can tell "connection refused"
// (a RST or ICMP port unreachable: no endpoints) from a timeout (dropped) and from a reset.
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { createSocket } from 'node:dgram';

const [mode, json] = process.argv.slice(2);
const opts = JSON.parse(json ?? '{}');

function classify(err) {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'unreachable';
    default:
      return 'error';
  }
}

function tcpRequest({ address, port, timeoutMs, http, payload }) {
  return new Promise((resolve) => {
    const started = performance.now();
    const chunks = [];
    let settled = false;
    const finish = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...result, ms: Math.round((performance.now() - started) * 10) / 10 });
    };
    const socket = connect({ host: address, port });
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout', message: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.on('connect', () => {
      if (http) socket.write(`GET ${http === true ? '/' : http} HTTP/1.1\r\nHost: ${address}:${port}\r\nConnection: close\r\n\r\n`);
      // Always a first line, so that the server answers at once instead of waiting out its grace for silence.
      else socket.write(payload ?? 'hostname\n');
    });
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', (err) => finish({ ok: false, error: classify(err), message: err.message }));
    socket.on('end', () => {
      let text = Buffer.concat(chunks).toString('utf8');
      if (http) {
        const status = /^HTTP\/1\.[01] (\d+)/.exec(text);
        if (!status) return finish({ ok: false, error: 'error', message: `not an HTTP response: ${JSON.stringify(text.slice(0, 80))}` });
        text = text.slice(text.indexOf('\r\n\r\n') + 4);
      }
      const answer = text.trim();
      if (answer.length === 0) finish({ ok: false, error: 'reset', message: 'connection closed without an answer' });
      else finish({ ok: true, answer });
    });
  });
}

function udpRequest({ address, port, timeoutMs, payload }) {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = createSocket('udp4');
    let settled = false;
    const finish = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      resolve({ ...result, ms: Math.round((performance.now() - started) * 10) / 10 });
    };
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout', message: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.on('error', (err) => finish({ ok: false, error: classify(err), message: err.message }));
    socket.on('message', (msg) => finish({ ok: true, answer: msg.toString('utf8').trim() }));
    // Connected, so that an ICMP port unreachable comes back to us as ECONNREFUSED.
    socket.connect(port, address, () => socket.send(payload ?? 'hostname'));
  });
}

async function requests() {
  const { count = 1, concurrency = 50, protocol = 'TCP' } = opts;
  const one = protocol === 'UDP' ? udpRequest : tcpRequest;
  const results = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await one(opts);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  process.stdout.write(JSON.stringify(results) + '\n');
}

function stream() {
  const { address, port, intervalMs = 20, timeoutMs = 3000 } = opts;
  const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');
  const socket = connect({ host: address, port });
  let backend;
  let received = '';
  let sent = '';
  let lines = 0;
  let lastEcho = performance.now();
  let maxGapMs = 0;
  let error = null;
  let ticker;
  let stopping = false;
  const done = () => {
    clearInterval(ticker);
    clearInterval(reporter);
    const echoed = backend === undefined ? 0 : received.length;
    emit({ event: 'done', backend, sentLines: lines, sentBytes: sent.length, echoedBytes: echoed, intact: received === sent.slice(0, received.length), maxGapMs: Math.round(maxGapMs), error });
    socket.destroy();
    process.exit(0);
  };
  const timer = setTimeout(() => {
    if (backend === undefined) {
      error = { error: 'timeout', message: `not connected within ${timeoutMs} ms` };
      done();
    }
  }, timeoutMs);
  const reporter = setInterval(() => backend !== undefined && emit({ event: 'progress', sentBytes: sent.length, echoedBytes: received.length, maxGapMs: Math.round(maxGapMs) }), 200);
  socket.on('connect', () => socket.write('stream\n'));
  socket.on('data', (chunk) => {
    let text = chunk.toString('latin1');
    if (backend === undefined) {
      const head = (socket.head ?? '') + text;
      const nl = head.indexOf('\n');
      if (nl < 0) {
        socket.head = head;
        return;
      }
      backend = head.slice(0, nl).trim();
      text = head.slice(nl + 1);
      clearTimeout(timer);
      emit({ event: 'connected', backend, local: `${socket.localAddress}:${socket.localPort}` });
      lastEcho = performance.now();
      ticker = setInterval(() => {
        if (stopping) return;
        const line = `line ${++lines}\n`;
        sent += line;
        socket.write(line);
        // A gap counts only while something is outstanding: an idle connection is not a stall.
        if (received.length < sent.length - line.length) maxGapMs = Math.max(maxGapMs, performance.now() - lastEcho);
      }, intervalMs);
    }
    if (text.length > 0) {
      received += text;
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - lastEcho);
      lastEcho = now;
      if (stopping && received.length >= sent.length) done();
    }
  });
  socket.on('error', (err) => {
    error = { error: classify(err), message: err.message };
    done();
  });
  socket.on('end', () => {
    if (!stopping) error = { error: 'reset', message: 'the server closed the connection' };
    done();
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (backend === undefined || received.length >= sent.length) return done();
    // Let the last lines come back, but not forever.
    setTimeout(() => {
      error ??= { error: 'timeout', message: `echo incomplete ${timeoutMs} ms after stop` };
      done();
    }, timeoutMs);
  };
  // Stopped from outside (a lab going down): report what happened so far instead of vanishing.
  process.on('SIGTERM', () => {
    error ??= { error: 'error', message: 'terminated' };
    done();
  });
  process.stdin.on('data', (d) => d.toString().includes('stop') && stop());
  process.stdin.on('end', stop);
}

/**
 * download: the server sends "POD SHA\n" then the bytes; they must all come, and hash to SHA.
 * upload: we send the bytes; the server answers "POD SHA\n" of what it got, which must be ours.
 */
function transfer() {
  const { address, port, direction, bytes, timeoutMs = 30000 } = opts;
  const started = performance.now();
  const socket = connect({ host: address, port });
  const hash = createHash('sha256');
  const sent = direction === 'upload' ? randomBytes(bytes) : null;
  const expected = sent ? createHash('sha256').update(sent).digest('hex') : null;
  let head = Buffer.alloc(0);
  let backend;
  let digest;
  let received = 0;
  const finish = (result) => {
    clearTimeout(timer);
    socket.destroy();
    process.stdout.write(JSON.stringify({ direction, bytes, received, backend, ms: Math.round(performance.now() - started), ...result }) + '\n');
    process.exit(0);
  };
  const timer = setTimeout(() => finish({ ok: false, error: 'timeout', message: `not done within ${timeoutMs} ms (${received} of ${bytes} bytes)` }), timeoutMs);
  socket.on('connect', () => {
    socket.write(`${direction} ${bytes}\n`);
    if (sent) socket.write(sent);
  });
  socket.on('data', (chunk) => {
    if (backend === undefined) {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) return;
      [backend, digest] = head.subarray(0, nl).toString('latin1').trim().split(' ');
      chunk = head.subarray(nl + 1);
    }
    received += chunk.length;
    hash.update(chunk);
  });
  socket.on('error', (err) => finish({ ok: false, error: classify(err), message: err.message }));
  socket.on('end', () => {
    if (backend === undefined) return finish({ ok: false, error: 'reset', message: 'closed without an answer' });
    if (sent) return finish(digest === expected ? { ok: true } : { ok: false, error: 'corrupt', message: `the server hashed ${digest}, we sent ${expected}` });
    if (received !== bytes) return finish({ ok: false, error: 'short', message: `${received} of ${bytes} bytes` });
    const got = hash.digest('hex');
    finish(got === digest ? { ok: true } : { ok: false, error: 'corrupt', message: `received bytes hash to ${got}, the server sent ${digest}` });
  });
}

if (mode === 'request') await requests();
else if (mode === 'stream') stream();
else if (mode === 'transfer') transfer();
else {
  process.stderr.write(`usage: hostname-client.mjs request|stream|transfer JSON\n`);
  process.exit(2);
}
