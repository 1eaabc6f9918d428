/**
 * The contract between the sentry and a platform. A platform runs application code in isolated
 * host address spaces and returns control to the sentry whenever that code makes a system call,
 * faults, receives a host signal, or is interrupted. It implements no Linux semantics: the sentry
 * decides what every system call, fault and signal means.
 */
import type { Registers } from './registers.js';

/** Kind of event that ended a `Context.switch`. Plain numbers, so the hot path allocates nothing. */
export const SwitchKind = {
  /** The application executed SYSCALL. `orig_rax` contains the number, rip points after the instruction. */
  Syscall: 0,
  /** A memory access faulted. See `Context.faultAddress` and `Context.faultAccess`; rip points at the instruction. */
  Fault: 1,
  /** A synchronous exception or host signal. See `Context.signalInfo`. */
  Signal: 2,
  /** `Context.interrupt()` was called; the application was stopped between instructions. */
  Interrupted: 3,
} as const;
export type SwitchKind = (typeof SwitchKind)[keyof typeof SwitchKind];

/** Access bits, as in a VMA's protection. */
export const Access = {
  None: 0,
  Read: 1,
  Write: 2,
  Execute: 4,
} as const;
export type AccessBits = number;

/** A host file whose pages an address space can map, such as the sentry's memory file. */
export interface MappableFile {
  /** Open host descriptor. It must stay open while any of its pages is mapped. */
  readonly fd: number;
}

/**
 * Optional features of a platform, in the manner of abstract-level's manifest. The conformance
 * suite and the sentry check these instead of probing behaviour.
 */
export interface PlatformSupports {
  /**
   * Faults report the exact access type (read, write or execute) of the faulting instruction.
   * When false, `faultAccess` is a lower bound: the platform reports Write or Execute only when it
   * can tell, and Read otherwise, so a sentry that maps the page for reading gets a second fault.
   */
  readonly exactFaultAccess: boolean;
  /** Several contexts may run concurrently in one address space. */
  readonly sharedAddressSpaces: boolean;
}

/**
 * An isolated host address space. Everything below `Platform.maxUserAddress` starts unmapped.
 *
 * Preconditions for every method: the address space has not been released.
 */
export interface AddressSpace {
  /**
   * Maps `length` bytes of `file` starting at `offset` at `addr` with the given access, replacing
   * whatever was mapped in that range. `addr`, `offset` and `length` are multiples of the page size
   * and the range lies within [minUserAddress, maxUserAddress).
   */
  mapFile(addr: number, file: MappableFile, offset: number, length: number, access: AccessBits): void;

  /** Removes every mapping in [addr, addr + length). Unmapping nothing is not an error. */
  unmap(addr: number, length: number): void;

  /** Frees the host address space. No context may be inside a switch into it. */
  release(): void;
}

/**
 * A thread of execution that runs application code in some address space.
 *
 * Fault and signal details are stored on the context (not returned as objects) so that a switch
 * that returns quickly allocates nothing. They are valid until the next switch.
 */
export interface Context {
  /**
   * Loads `regs` into the CPU, runs application code in `as` until a system call, fault, signal or
   * interrupt, then stores the application's registers back into `regs`.
   *
   * Returns the kind directly when the application stopped quickly, and a promise otherwise, so
   * that the JavaScript event loop stays free while application code runs for a long time.
   *
   * Preconditions: no other switch of this context is in progress; `as` was created by the same
   * platform and has not been released.
   */
  switch(as: AddressSpace, regs: Registers): SwitchKind | Promise<SwitchKind>;

  /** Address that faulted, valid after a switch returned `Fault`. */
  readonly faultAddress: number;

  /** Access bits (Read, Write or Execute) of the faulting access, valid after `Fault`. */
  readonly faultAccess: AccessBits;

  /** struct siginfo (128 bytes) of the signal, valid after `Signal` (and after `Fault` where the platform has one). */
  readonly signalInfo: Uint8Array;

  /**
   * Makes an in-progress or the next switch return `Interrupted` as soon as possible. Safe to call
   * at any time, including when no switch is running. A switch may then return `Interrupted`
   * spuriously, and the caller treats that as a request to check for pending work.
   */
  interrupt(): void;

  /** Frees the context's host resources. No switch may be in progress. */
  release(): void;
}

/** A platform instance. Created by a registered descriptor's factory. */
export interface Platform {
  readonly name: string;
  readonly supports: PlatformSupports;
  /** Lowest address that may be mapped. */
  readonly minUserAddress: number;
  /** First address that may not be mapped; application memory lies below it. */
  readonly maxUserAddress: number;
  /**
   * End of the file offsets `mapFile` accepts, when the platform has such a limit (KVM gives each
   * file a fixed guest-physical window). The sentry keeps its memory file below it.
   */
  readonly maxFileSize?: number;

  /** Creates an address space. Throws PlatformLimitError when a host or platform limit is reached. */
  newAddressSpace(): AddressSpace;
  /** Creates a context. Throws PlatformLimitError when a host or platform limit is reached. */
  newContext(): Context;

  /** Frees every host resource of the platform: processes, threads, descriptors, VMs. */
  close(): void;
}

/** Result of `PlatformDescriptor.probe()`. */
export interface ProbeResult {
  readonly available: boolean;
  /** Reason the platform cannot run on this host, in one line, or empty when it is available. */
  readonly reason: string;
  /** Whether the host is itself a virtual machine, as far as the platform can tell. */
  readonly nestedVirtualization?: boolean;
}

export interface PlatformOptions {
  /** Free-form options a platform documents for itself. */
  readonly [key: string]: unknown;
}

/** Descriptor a platform package registers when it is loaded. */
export interface PlatformDescriptor {
  readonly name: string;
  /** One line for `runsc platforms`. */
  readonly description: string;
  /**
   * Relative speed used by `lookup('auto')`: higher is preferred. First-party values are
   * kvm 30, systrap 20, ptrace 10; inside a VM kvm lowers its own rank below systrap.
   */
  rank(): number;
  probe(): ProbeResult;
  create(options?: PlatformOptions): Platform;
}
