#!/usr/bin/env node
// One request per given local port, in turn, each from exactly that source port: what a test
// needs to send "the same flow" twice (through one node, then another) and compare the backends.
// Plain node, run inside the client's namespace:
//
//   node fixed-port-client.mjs '{"address":…,"port":…,"protocol":"TCP"|"UDP","localPorts":[…],"payload":"whoami","timeoutMs":…,"close":"fin"|"reset"}'
//
// A TCP connection ends once the server has closed it: with a FIN of ours ("fin", the default), or
// with a RST ("reset"), which leaves no TIME_WAIT socket behind on either side.
// Prints a JSON array: per port, { ok: true, answer } or { ok: false, error }.
import { connect } from 'node:net';
import { createSocket } from 'node:dgram';

const { address, port, protocol = 'UDP', localPorts, payload = 'whoami', timeoutMs = 1000, close = 'fin' } = JSON.parse(process.argv[2] ?? '{}');

function once(localPort) {
  return new Promise((resolve) => {
    let settled = false;
    let socket;
    const finish = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (protocol === 'UDP') socket.close();
      // resetAndDestroy() waits for a connection still being made: only a finished one is reset.
      else if (close === 'reset' && result.ok) socket.resetAndDestroy();
      else socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), timeoutMs);
    if (protocol === 'UDP') {
      socket = createSocket('udp4');
      socket.on('error', (e) => finish({ ok: false, error: e.code ?? e.message }));
      socket.on('message', (m) => finish({ ok: true, answer: m.toString('utf8').trim() }));
      socket.bind(localPort, () => socket.connect(port, address, () => socket.send(payload)));
    } else {
      const chunks = [];
      socket = connect({ host: address, port, localPort });
      socket.on('connect', () => socket.write(`${payload}\n`));
      socket.on('data', (c) => chunks.push(c));
      socket.on('error', (e) => finish({ ok: false, error: e.code ?? e.message }));
      socket.on('end', () => finish({ ok: true, answer: Buffer.concat(chunks).toString('utf8').trim() }));
    }
  });
}

const results = [];
for (const p of localPorts) results.push(await once(p));
process.stdout.write(JSON.stringify(results) + '\n');
