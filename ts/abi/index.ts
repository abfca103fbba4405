/** The datapath's ABI as TypeScript sees it: codecs, map specs, enums, config, flow hash, clock, names. */
export * from './codec.js';
export * from './layouts.js';
export * from './constants.js';
export * from './drop-reason.js';
export * from './config.js';
export * from './maps.js';
export * from './flow-hash.js';
export * from './clock.js';
export * from './names.js';
