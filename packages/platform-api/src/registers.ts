/**
 * The x86-64 user register set of one task, kept in one ArrayBuffer that native platform code reads
 * and writes in place, so a context switch copies no registers through JavaScript objects.
 *
 * Layout (all little-endian):
 *   0     struct user_regs_struct from <sys/user.h>, 27 × u64 (216 bytes), the order PTRACE_GETREGS uses
 *   256   FPU/SSE/AVX state in XSAVE format, FP_STATE_SIZE bytes, 64-byte aligned. Its first 512 bytes
 *         are the legacy FXSAVE image (struct user_fpregs_struct); an XSAVE header follows at 512.
 */

export const GPR_OFFSET = 0;
export const GPR_SIZE = 216;
export const FP_STATE_OFFSET = 256;
export const FP_STATE_SIZE = 4096;
export const REGISTERS_SIZE = FP_STATE_OFFSET + FP_STATE_SIZE;

/** Byte offsets of each field of struct user_regs_struct. */
export const Reg = {
  r15: 0,
  r14: 8,
  r13: 16,
  r12: 24,
  rbp: 32,
  rbx: 40,
  r11: 48,
  r10: 56,
  r9: 64,
  r8: 72,
  rax: 80,
  rcx: 88,
  rdx: 96,
  rsi: 104,
  rdi: 112,
  orig_rax: 120,
  rip: 128,
  cs: 136,
  eflags: 144,
  rsp: 152,
  ss: 160,
  fs_base: 168,
  gs_base: 176,
  ds: 184,
  es: 192,
  fs: 200,
  gs: 208,
} as const;

export type RegName = keyof typeof Reg;

/** Byte offsets inside the FXSAVE image that starts at FP_STATE_OFFSET. */
export const Fx = {
  fcw: 0,
  fsw: 2,
  ftw: 4,
  fop: 6,
  mxcsr: 24,
  mxcsrMask: 28,
  st0: 32,
  xmm0: 160,
  xstateBv: 512,
  xcompBv: 520,
} as const;

/** Selectors the Linux x86-64 kernel gives 64-bit user code (__USER_CS, __USER_DS). */
export const USER_CS = 0x33;
export const USER_DS = 0x2b;

const TWO_32 = 4294967296;

/**
 * Registers of one task. Plain-number accessors return a register as a signed 64-bit integer in a
 * JavaScript number: exact for every user address and for every value between -2^53 and 2^53,
 * which covers system call arguments and results. Use `getBig`/`setBig` for full 64-bit values.
 */
export class Registers {
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  private readonly u32: Uint32Array;
  private readonly i32: Int32Array;
  private readonly u64: BigUint64Array;

  constructor(buffer: ArrayBuffer = new ArrayBuffer(REGISTERS_SIZE)) {
    if (buffer.byteLength < REGISTERS_SIZE) {
      throw new RangeError(`Registers need a buffer of at least ${REGISTERS_SIZE} bytes, got ${buffer.byteLength}`);
    }
    this.buffer = buffer;
    this.bytes = new Uint8Array(buffer, 0, REGISTERS_SIZE);
    this.u32 = new Uint32Array(buffer, 0, REGISTERS_SIZE / 4);
    this.i32 = new Int32Array(buffer, 0, REGISTERS_SIZE / 4);
    this.u64 = new BigUint64Array(buffer, 0, REGISTERS_SIZE / 8);
  }

  /** Sets the state a fresh 64-bit user thread starts with: zeroed registers, user selectors, default FPU control words. */
  reset(): void {
    this.bytes.fill(0);
    this.set(Reg.cs, USER_CS);
    this.set(Reg.ss, USER_DS);
    this.set(Reg.eflags, 0x202);
    const fp = FP_STATE_OFFSET;
    this.bytes[fp + Fx.fcw] = 0x7f;
    this.bytes[fp + Fx.fcw + 1] = 0x03;
    this.u32[(fp + Fx.mxcsr) / 4] = 0x1f80;
    this.u32[(fp + Fx.mxcsrMask) / 4] = 0xffff;
    // x87 and SSE state present in the XSAVE header.
    this.u32[(fp + Fx.xstateBv) / 4] = 0x3;
  }

  get(offset: number): number {
    return this.i32[(offset >> 2) + 1] * TWO_32 + this.u32[offset >> 2];
  }

  set(offset: number, value: number): void {
    this.u32[offset >> 2] = value >>> 0;
    this.i32[(offset >> 2) + 1] = Math.floor(value / TWO_32) | 0;
  }

  getBig(offset: number): bigint {
    return this.u64[offset >> 3];
  }

  setBig(offset: number, value: bigint): void {
    this.u64[offset >> 3] = BigInt.asUintN(64, value);
  }

  /** Copies every register and the FPU state from another register set. */
  copyFrom(other: Registers): void {
    this.bytes.set(other.bytes);
  }

  /** Returns the 16-byte XMM register `index` from the FXSAVE image. */
  xmm(index: number): Uint8Array {
    const start = FP_STATE_OFFSET + Fx.xmm0 + index * 16;
    return this.bytes.subarray(start, start + 16);
  }

  /** The FPU/SSE/AVX state in XSAVE format. */
  get fpState(): Uint8Array {
    return this.bytes.subarray(FP_STATE_OFFSET, FP_STATE_OFFSET + FP_STATE_SIZE);
  }

  get rax(): number { return this.get(Reg.rax); }
  set rax(v: number) { this.set(Reg.rax, v); }
  get rbx(): number { return this.get(Reg.rbx); }
  set rbx(v: number) { this.set(Reg.rbx, v); }
  get rcx(): number { return this.get(Reg.rcx); }
  set rcx(v: number) { this.set(Reg.rcx, v); }
  get rdx(): number { return this.get(Reg.rdx); }
  set rdx(v: number) { this.set(Reg.rdx, v); }
  get rsi(): number { return this.get(Reg.rsi); }
  set rsi(v: number) { this.set(Reg.rsi, v); }
  get rdi(): number { return this.get(Reg.rdi); }
  set rdi(v: number) { this.set(Reg.rdi, v); }
  get rbp(): number { return this.get(Reg.rbp); }
  set rbp(v: number) { this.set(Reg.rbp, v); }
  get rsp(): number { return this.get(Reg.rsp); }
  set rsp(v: number) { this.set(Reg.rsp, v); }
  get r8(): number { return this.get(Reg.r8); }
  set r8(v: number) { this.set(Reg.r8, v); }
  get r9(): number { return this.get(Reg.r9); }
  set r9(v: number) { this.set(Reg.r9, v); }
  get r10(): number { return this.get(Reg.r10); }
  set r10(v: number) { this.set(Reg.r10, v); }
  get r11(): number { return this.get(Reg.r11); }
  set r11(v: number) { this.set(Reg.r11, v); }
  get r12(): number { return this.get(Reg.r12); }
  set r12(v: number) { this.set(Reg.r12, v); }
  get r13(): number { return this.get(Reg.r13); }
  set r13(v: number) { this.set(Reg.r13, v); }
  get r14(): number { return this.get(Reg.r14); }
  set r14(v: number) { this.set(Reg.r14, v); }
  get r15(): number { return this.get(Reg.r15); }
  set r15(v: number) { this.set(Reg.r15, v); }
  get rip(): number { return this.get(Reg.rip); }
  set rip(v: number) { this.set(Reg.rip, v); }
  get eflags(): number { return this.get(Reg.eflags); }
  set eflags(v: number) { this.set(Reg.eflags, v); }
  get orig_rax(): number { return this.get(Reg.orig_rax); }
  set orig_rax(v: number) { this.set(Reg.orig_rax, v); }
  get fs_base(): number { return this.get(Reg.fs_base); }
  set fs_base(v: number) { this.set(Reg.fs_base, v); }
  get gs_base(): number { return this.get(Reg.gs_base); }
  set gs_base(v: number) { this.set(Reg.gs_base, v); }
}
