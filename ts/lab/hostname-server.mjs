#!/usr/bin/env node
// The lab's hostname server, like Kubernetes' serve_hostname / agnhost netexec: it answers with its pod
// name on every given port, TCP and UDP. Plain JavaScript with no imports beyond node: so that it
// starts in tens of milliseconds under plain `node` inside a pod namespace (no tsx, no addon).
//
//   node hostname-server.mjs --name POD --port 9376 [--port 80 …]
//
// TCP: a client that sends nothing within GRACE_MS gets "POD\n" and the connection is closed; one that
// sends an HTTP request gets an HTTP/1.1 200 response whose body is POD (or the client's address for
// GET /clientip); a first line "clientip" gets the client's address; "whoami" gets "POD CLIENT" (both at
// once: which backend answered and the peer address it saw); a first line "stream" gets "POD\n"
// and then every byte it sends echoed back for as long as it stays connected (long-lived connections
// for tests that change backends under them); "download N" gets "POD SHA256\n" and then N random
// bytes whose SHA-256 that is; "upload N" reads N bytes and answers "POD SHA256\n" of what came (bulk
// transfers, checksummed both ways); any other first line gets "POD\n".
// UDP: "clientip" → the client's address, "whoami" → "POD CLIENT", "echo X" → X, anything else → POD.
//
// "ready\n" on stdout means every socket is listening; the parent waits for it.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

// Long enough that a client's first line is never taken for silence on a loaded machine (the lab's own
// client always sends one, so it never waits this out); short enough for `nc` by hand.
const GRACE_MS = 250;
const FIRST_LINE_MAX_WAIT_MS = 1000;
const FIRST_LINE_MAX_BYTES = 8192;

function parseArgs(argv) {
  let name;
  const ports = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--name') name = argv[++i];
    else if (arg === '--port') ports.push(Number(argv[++i]));
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!name) throw new Error('--name is required');
  if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    throw new Error('at least one --port 1…65535 is required');
  }
  return { name, ports: [...new Set(ports)] };
}

const { name, ports } = parseArgs(process.argv.slice(2));
// The parent may have gone (a CLI that exits once the pod is ready): never die of EPIPE.
process.stdout.on('error', () => {});

const HTTP_REQUEST_LINE = /^[A-Z]+ (\S+) HTTP\/1\.[01]\r?$/;
const BULK_LINE = /^(download|upload) (\d{1,10})$/;
/** Bulk transfers are bounded: a lab test moves megabytes, not gigabytes. */
const BULK_MAX_BYTES = 256 * 1024 * 1024;

/** "download N": the digest first, then the bytes, in chunks that respect backpressure. */
function download(socket, bytes) {
  const data = randomBytes(bytes);
  socket.write(`${name} ${createHash('sha256').update(data).digest('hex')}\n`);
  socket.end(data);
}

/** "upload N": hash N bytes (`rest` is what came with the command line), then answer the digest. */
function upload(socket, bytes, rest) {
  const hash = createHash('sha256');
  let left = bytes;
  const take = (chunk) => {
    const part = chunk.subarray(0, left);
    hash.update(part);
    left -= part.length;
    if (left === 0) {
      socket.removeListener('data', take);
      socket.end(`${name} ${hash.digest('hex')}\n`);
    }
  };
  socket.on('data', take);
  if (rest.length > 0) take(rest);
  else if (bytes === 0) take(Buffer.alloc(0));
}

function clientAddress(socket) {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}

function answerFirstLine(socket, line, rest) {
  const http = HTTP_REQUEST_LINE.exec(line);
  if (http) {
    const body = http[1] === '/clientip' ? clientAddress(socket) : name;
    socket.end(
      `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    return;
  }
  const command = line.trim();
  const bulk = BULK_LINE.exec(command);
  if (bulk && Number(bulk[2]) <= BULK_MAX_BYTES) {
    if (bulk[1] === 'download') download(socket, Number(bulk[2]));
    else upload(socket, Number(bulk[2]), rest);
  } else if (command === 'clientip') socket.end(`${clientAddress(socket)}\n`);
  else if (command === 'whoami') socket.end(`${name} ${clientAddress(socket)}\n`);
  else if (command === 'stream') {
    socket.write(`${name}\n`);
    socket.pipe(socket);
  } else socket.end(`${name}\n`);
}

function onConnection(socket) {
  socket.on('error', () => {});
  let buffered = '';
  let answered = false;
  const answer = (line) => {
    if (answered) return;
    answered = true;
    clearTimeout(grace);
    clearTimeout(maxWait);
    socket.removeListener('data', onData);
    // What came after the command line in the same segment: echoed in stream mode, hashed by upload.
    const rest = buffered.includes('\n') ? Buffer.from(buffered.slice(buffered.indexOf('\n') + 1), 'latin1') : Buffer.alloc(0);
    answerFirstLine(socket, line, rest);
    if (line.trim() === 'stream' && rest.length > 0) socket.write(rest);
  };
  const onData = (chunk) => {
    clearTimeout(grace);
    buffered += chunk.toString('latin1');
    const newline = buffered.indexOf('\n');
    if (newline >= 0) answer(buffered.slice(0, newline));
    else if (buffered.length >= FIRST_LINE_MAX_BYTES) answer(buffered);
  };
  socket.on('data', onData);
  socket.on('end', () => answer(buffered));
  const grace = setTimeout(() => buffered.length === 0 && answer(''), GRACE_MS);
  const maxWait = setTimeout(() => answer(buffered), FIRST_LINE_MAX_WAIT_MS);
}

function listenTcp(port) {
  return new Promise((resolve, reject) => {
    const server = createServer(onConnection);
    server.once('error', reject);
    server.listen({ port, host: '0.0.0.0', backlog: 1024 }, () => resolve(server));
  });
}

function listenUdp(port) {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.on('message', (msg, rinfo) => {
      const text = msg.toString('utf8').trim();
      let reply = name;
      if (text === 'clientip') reply = `${rinfo.address}:${rinfo.port}`;
      else if (text === 'whoami') reply = `${name} ${rinfo.address}:${rinfo.port}`;
      else if (text.startsWith('echo ')) reply = text.slice('echo '.length);
      socket.send(reply, rinfo.port, rinfo.address);
    });
    socket.bind(port, '0.0.0.0', () => {
      socket.removeListener('error', reject);
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}

try {
  const servers = await Promise.all(ports.flatMap((port) => [listenTcp(port), listenUdp(port)]));
  const stop = () => {
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write('ready\n');
} catch (e) {
  process.stderr.write(`hostname-server ${name}: ${e.message}\n`);
  process.exit(1);
}
