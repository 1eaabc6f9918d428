export * from './platform.js';
export * from './registers.js';
export * from './registry.js';
export * from './host.js';
export * from './limits.js';
