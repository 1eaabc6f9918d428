/**
 * Helpers for a platform's own tests, beyond what the conformance suite checks:
 *
 *   import { ScratchFile, freshRegisters, startHoldingFixture } from '@tsvisor/platform-api/testing';
 *
 * They cover what the tests of every platform with host processes repeat: a file to map code
 * from, registers to start it with, and liveness checks on host processes. A fixture script keeps
 * a context spinning in a child Node process so that a test can kill that process or let it exit.
 */
export { ScratchFile } from '../conformance/host.js';
export { freshRegisters } from './registers.js';
export { isAlive, waitUntilGone } from './processes.js';
export {
  type SpinningFixtureOptions,
  runLeavingFixture,
  runSpinningFixture,
  startHoldingFixture,
} from './spinning-fixture.js';
