/**
 * The x86-64 signal frame, as Linux builds it on the user stack before it runs a handler, and
 * rt_sigreturn, which reads it back. From the top of the stack down:
 *
 *   FPU state      XSAVE image of the interrupted code (FXSAVE format in its first 512 bytes,
 *                  with struct _fpx_sw_bytes at 464 and FP_XSTATE_MAGIC2 after the image),
 *                  64-byte aligned
 *   struct rt_sigframe
 *     pretcode     return address of the handler: sa_restorer, which calls rt_sigreturn
 *     ucontext     uc_flags, uc_link, uc_stack, uc_mcontext (struct sigcontext), uc_sigmask
 *     siginfo      128 bytes
 *
 * The handler is entered with rsp at pretcode, so that rsp + 8 is 16-byte aligned as after a
 * call, and with rdi = signal, rsi = &siginfo, rdx = &ucontext. The layouts come from
 * <asm/sigcontext.h> and <asm/ucontext.h>.
 */
import { FP_STATE_OFFSET, FP_STATE_SIZE, Fx, Reg, USER_CS, USER_DS, type Registers } from '@tsvisor/platform-api';
import type { Task } from '../task.js';
import { SIGINFO_SIZE, type SigInfo } from './siginfo.js';
import { SS_DISABLE, SS_ONSTACK, type AltStack } from './state.js';

const UCONTEXT_OFFSET = 8;
const UC_FLAGS = 0;
const UC_LINK = 8;
const UC_STACK = 16;
const UC_MCONTEXT = 40;
const UC_SIGMASK = 296;
const UCONTEXT_SIZE = 304;
const SIGINFO_OFFSET = UCONTEXT_OFFSET + UCONTEXT_SIZE;
export const FRAME_SIZE = SIGINFO_OFFSET + SIGINFO_SIZE;

/** struct sigcontext field offsets, relative to uc_mcontext. */
const Sc = {
  r8: 0, r9: 8, r10: 16, r11: 24, r12: 32, r13: 40, r14: 48, r15: 56,
  rdi: 64, rsi: 72, rbp: 80, rbx: 88, rdx: 96, rax: 104, rcx: 112, rsp: 120,
  rip: 128, eflags: 136, cs: 144, gs: 146, fs: 148, ss: 150,
  err: 152, trapno: 160, oldmask: 168, cr2: 176, fpstate: 184,
} as const;

const GENERAL_REGISTERS = ['r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rdi', 'rsi', 'rbp', 'rbx', 'rdx', 'rax', 'rcx', 'rsp', 'rip'] as const;

const UC_FP_XSTATE = 0x1n;
const UC_SIGCONTEXT_SS = 0x2n;
const UC_STRICT_RESTORE_SS = 0x4n;

/** struct _fpx_sw_bytes inside the FXSAVE image, marking an XSAVE image and giving its size. */
const SW_BYTES_OFFSET = 464;
const FP_XSTATE_MAGIC1 = 0x46505853;
const FP_XSTATE_MAGIC2 = 0x46505845;
const FXSAVE_SIZE = 512;

/** The bytes below the stack pointer that x86-64 code may use without moving it. */
const RED_ZONE = 128;

/** eflags bits a handler's sigreturn may change (AC, OF, DF, TF, SF, ZF, AF, PF, CF, RF). */
const FIX_EFLAGS = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000;
/** eflags bits cleared for the handler: TF, DF, RF and AC. */
const HANDLER_CLEARS = 0x100 | 0x400 | 0x10000 | 0x40000;

/**
 * XSAVE components seen in use in any frame so far. Without the host's software bytes this is the
 * best known approximation of XCR0, used to reject components a handler sets in a saved image.
 */
let observedFeatures = 0x3n;

/** The XSAVE layout of `regs`: the image size and the enabled components (XCR0). */
interface XstateLayout {
  readonly size: number;
  readonly features: bigint;
}

/**
 * Returns the XSAVE layout from the software bytes the host kernel wrote into the image, where the
 * platform kept them. Otherwise the component offsets are unknown, because they depend on the
 * CPU, so the whole image the registers hold is saved. That costs stack but keeps every component
 * the platform passes on, such as the AVX-512 registers glibc's string functions use.
 */
function xstateLayout(regs: Registers): XstateLayout {
  const fp = Buffer.from(regs.buffer, FP_STATE_OFFSET, FP_STATE_SIZE);
  const fallback = { size: FP_STATE_SIZE, features: fp.readBigUInt64LE(Fx.xstateBv) | 0x3n };
  if (fp.readUInt32LE(SW_BYTES_OFFSET) !== FP_XSTATE_MAGIC1) return fallback;
  const size = fp.readUInt32LE(SW_BYTES_OFFSET + 16);
  if (size < FXSAVE_SIZE + 64 || size > FP_STATE_SIZE) return fallback;
  return { size, features: fp.readBigUInt64LE(SW_BYTES_OFFSET + 8) };
}

/** Writes the software bytes that tell a reader of the frame how large the XSAVE image is. */
function markXstate(image: Buffer, layout: XstateLayout): void {
  image.writeUInt32LE(FP_XSTATE_MAGIC1, SW_BYTES_OFFSET);
  image.writeUInt32LE(layout.size + 4, SW_BYTES_OFFSET + 4);
  image.writeBigUInt64LE(layout.features, SW_BYTES_OFFSET + 8);
  image.writeUInt32LE(layout.size, SW_BYTES_OFFSET + 16);
  image.writeUInt32LE(FP_XSTATE_MAGIC2, layout.size);
}

/** Gives the handler the FPU state of a new thread, as Linux does before it enters a handler. */
function resetFpState(regs: Registers): void {
  const fp = regs.bytes.subarray(FP_STATE_OFFSET, FP_STATE_OFFSET + FP_STATE_SIZE);
  const view = Buffer.from(fp.buffer, fp.byteOffset, fp.length);
  const swBytes = Buffer.from(view.subarray(SW_BYTES_OFFSET, SW_BYTES_OFFSET + 48));
  view.fill(0);
  view.writeUInt16LE(0x37f, Fx.fcw);
  view.writeUInt32LE(0x1f80, Fx.mxcsr);
  view.writeUInt32LE(0xffff, Fx.mxcsrMask);
  view.writeBigUInt64LE(0x3n, Fx.xstateBv);
  swBytes.copy(view, SW_BYTES_OFFSET);
}

/**
 * Clears what the handler may have written into the saved FPU image that XRSTOR would reject:
 * reserved MXCSR bits, components the CPU does not enable, the compacted-format bit and the
 * reserved header bytes. Linux does the same before it loads a frame's FPU state.
 */
function sanitizeFpImage(image: Buffer, current: Registers): void {
  const fp = Buffer.from(current.buffer, FP_STATE_OFFSET, FP_STATE_SIZE);
  const enabled = fp.readUInt32LE(SW_BYTES_OFFSET) === FP_XSTATE_MAGIC1 ? fp.readBigUInt64LE(SW_BYTES_OFFSET + 8) : observedFeatures;
  const mxcsrMask = fp.readUInt32LE(Fx.mxcsrMask) || 0xffbf;
  image.writeUInt32LE(image.readUInt32LE(Fx.mxcsr) & mxcsrMask, Fx.mxcsr);
  image.writeBigUInt64LE(image.readBigUInt64LE(Fx.xstateBv) & enabled, Fx.xstateBv);
  image.fill(0, Fx.xcompBv, FXSAVE_SIZE + 64);
}

export interface FrameRequest {
  readonly handler: number;
  readonly restorer: number;
  readonly onAltStack: boolean;
  readonly info: SigInfo;
  /** The mask to restore on return (uc_sigmask). */
  readonly savedMask: bigint;
}

/** Builds the signal frame and points the registers at the handler. Throws SysError(EFAULT) when the stack is not writable. */
export function pushFrame(task: Task, request: FrameRequest): void {
  const regs = task.regs;
  const signals = task.signals;
  const stack: AltStack = signals.altStack;
  const wasOnAltStack = signals.onAltStack(regs.rsp);

  let sp = request.onAltStack && !wasOnAltStack ? Number(stack.sp + stack.size) : regs.rsp - RED_ZONE;

  const layout = xstateLayout(regs);
  observedFeatures |= layout.features;
  sp = Math.floor((sp - layout.size - 4) / 64) * 64;
  const fpAddress = sp;
  sp = Math.floor((sp - FRAME_SIZE) / 16) * 16 - 8;

  const fpImage = Buffer.alloc(layout.size + 4);
  fpImage.set(regs.bytes.subarray(FP_STATE_OFFSET, FP_STATE_OFFSET + layout.size));
  markXstate(fpImage, layout);

  const frame = Buffer.alloc(FRAME_SIZE);
  frame.writeBigUInt64LE(BigInt(request.restorer), 0);
  const uc = UCONTEXT_OFFSET;
  frame.writeBigUInt64LE(UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, uc + UC_FLAGS);
  frame.writeBigUInt64LE(0n, uc + UC_LINK);
  frame.writeBigUInt64LE(stack.sp, uc + UC_STACK);
  let stackFlags = stack.flags & ~(SS_DISABLE | SS_ONSTACK);
  if ((stack.flags & SS_DISABLE) !== 0) stackFlags |= SS_DISABLE;
  else if (wasOnAltStack) stackFlags |= SS_ONSTACK;
  frame.writeInt32LE(stackFlags, uc + UC_STACK + 8);
  frame.writeBigUInt64LE(stack.size, uc + UC_STACK + 16);

  const mc = uc + UC_MCONTEXT;
  for (const name of GENERAL_REGISTERS) frame.writeBigUInt64LE(regs.getBig(Reg[name]), mc + Sc[name]);
  frame.writeBigUInt64LE(regs.getBig(Reg.eflags), mc + Sc.eflags);
  frame.writeUInt16LE(Number(regs.getBig(Reg.cs)), mc + Sc.cs);
  frame.writeUInt16LE(Number(regs.getBig(Reg.ss)), mc + Sc.ss);
  frame.writeBigUInt64LE(BigInt(signals.faultErrorCode), mc + Sc.err);
  frame.writeBigUInt64LE(BigInt(signals.faultTrapNumber), mc + Sc.trapno);
  frame.writeBigUInt64LE(request.savedMask, mc + Sc.oldmask);
  frame.writeBigUInt64LE(BigInt.asUintN(64, BigInt(signals.faultAddress)), mc + Sc.cr2);
  frame.writeBigUInt64LE(BigInt(fpAddress), mc + Sc.fpstate);
  frame.writeBigUInt64LE(request.savedMask, uc + UC_SIGMASK);
  request.info.copy(frame, SIGINFO_OFFSET);

  task.mm.copyOut(fpAddress, fpImage);
  task.mm.copyOut(sp, frame);

  regs.rsp = sp;
  regs.rip = request.handler;
  regs.rdi = request.info.readInt32LE(0);
  regs.rsi = sp + SIGINFO_OFFSET;
  regs.rdx = sp + UCONTEXT_OFFSET;
  regs.rax = 0;
  regs.eflags = regs.eflags & ~HANDLER_CLEARS;
  regs.setBig(Reg.cs, BigInt(USER_CS));
  regs.setBig(Reg.ss, BigInt(USER_DS));
  resetFpState(regs);
}

/**
 * Restores the registers, the signal mask, the FPU state and the alternate stack from the frame
 * whose pretcode the handler's return popped, so that the frame starts at rsp - 8. Returns the
 * mask and the alternate stack to install; throws SysError(EFAULT) when the frame is unreadable.
 */
export function popFrame(task: Task): { mask: bigint; stack: AltStack } {
  const regs = task.regs;
  const frameAddress = regs.rsp - 8;
  const frame = task.mm.copyIn(frameAddress, FRAME_SIZE);
  const uc = UCONTEXT_OFFSET;
  const mc = uc + UC_MCONTEXT;

  const fpAddress = Number(frame.readBigUInt64LE(mc + Sc.fpstate));
  let fpImage: Buffer | undefined;
  if (fpAddress !== 0) {
    const legacy = task.mm.copyIn(fpAddress, FXSAVE_SIZE);
    let size = FXSAVE_SIZE;
    if (legacy.readUInt32LE(SW_BYTES_OFFSET) === FP_XSTATE_MAGIC1) {
      const claimed = legacy.readUInt32LE(SW_BYTES_OFFSET + 16);
      if (claimed > FXSAVE_SIZE && claimed <= FP_STATE_SIZE) {
        const whole = task.mm.copyIn(fpAddress, claimed + 4);
        if (whole.readUInt32LE(claimed) === FP_XSTATE_MAGIC2) size = claimed;
      }
    }
    fpImage = task.mm.copyIn(fpAddress, size);
    if (size === FXSAVE_SIZE) {
      // An FXSAVE-only image restores x87 and SSE; the XSAVE header marks just those as present.
      fpImage = Buffer.concat([fpImage, Buffer.alloc(64)]);
      fpImage.writeBigUInt64LE(0x3n, Fx.xstateBv);
    }
  }

  for (const name of GENERAL_REGISTERS) regs.setBig(Reg[name], frame.readBigUInt64LE(mc + Sc[name]));
  const userFlags = Number(frame.readBigUInt64LE(mc + Sc.eflags) & 0xffffffffn);
  regs.eflags = (regs.eflags & ~FIX_EFLAGS) | (userFlags & FIX_EFLAGS);
  regs.setBig(Reg.cs, BigInt(USER_CS));
  regs.setBig(Reg.ss, BigInt(USER_DS));
  regs.orig_rax = -1;
  if (fpImage !== undefined) {
    sanitizeFpImage(fpImage, regs);
    regs.bytes.set(fpImage, FP_STATE_OFFSET);
  }

  return {
    mask: frame.readBigUInt64LE(uc + UC_SIGMASK),
    stack: {
      sp: frame.readBigUInt64LE(uc + UC_STACK),
      flags: frame.readInt32LE(uc + UC_STACK + 8),
      size: frame.readBigUInt64LE(uc + UC_STACK + 16),
    },
  };
}
