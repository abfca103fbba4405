export * from './checksum.js';
export * from './packet.js';
