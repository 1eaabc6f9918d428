/**
 * The signal state of a task, under the name the task code uses. The state itself, and how the
 * signal code keeps Task.attention in step with it, is described in signals/state.ts.
 */
export { NSIG, Signal } from './signals/constants.js';
export { SS_DISABLE, SS_ONSTACK, TaskSignals as SignalState, type AltStack, type SignalAction } from './signals/state.js';

export const SIGKILL = 9;
export const SIGSTOP = 19;
export const SIGSEGV = 11;
