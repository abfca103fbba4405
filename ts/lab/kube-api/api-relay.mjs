#!/usr/bin/env node
// Reaching the lab's API server from inside a node namespace: the API server listens on the root
// namespace's loopback, which a node namespace cannot see, but a Unix socket is a file and files are
// shared. This listens on TCP inside the node namespace (127.0.0.1:6443) and relays each connection
// to the Unix socket that the process owning the lab relays on to the API server. TLS passes through
// untouched (the API server's certificate is for 127.0.0.1, which is what clients dial here too).
//
//   node api-relay.mjs --listen 127.0.0.1:6443 --unix /run/bpfproxy/labs/NAME/kube/apiserver.sock
//
// "ready\n" on stdout once listening.
import { connect, createServer } from 'node:net';

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  if (i < 0 || !args[i + 1]) throw new Error(`${name} is required`);
  return args[i + 1];
};
const [host, port] = arg('--listen').split(':');
const unix = arg('--unix');
process.stdout.on('error', () => {});

const server = createServer((client) => {
  const upstream = connect(unix);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
  client.on('close', close);
  upstream.on('close', close);
  client.pipe(upstream).pipe(client);
});
server.on('error', (e) => {
  console.error(`api-relay: ${e.message}`);
  process.exit(1);
});
server.listen(Number(port), host, () => process.stdout.write('ready\n'));
