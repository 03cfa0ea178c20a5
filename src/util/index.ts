/**
 * Small shared helpers (layer 0).
 *
 * @module
 */
export { abortError, throwIfAborted, withTimeout } from './abort.js';
export { HashingStream, sha256Hex } from './hash.js';
export { loadYaml } from './lazy.js';
export { type Logger, silentLogger } from './logger.js';
export { redactSecrets } from './redact.js';
export { Sha256, type Sha256Options, setHashOffloadDefault, terminateHashWorkers } from './sha256.js';
