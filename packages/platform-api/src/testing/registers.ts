import { Registers } from '../registers.js';

/** Returns reset registers, as a new thread starts with, that begin executing at `rip`. */
export function freshRegisters(rip: number): Registers {
  const regs = new Registers();
  regs.reset();
  regs.rip = rip;
  return regs;
}
