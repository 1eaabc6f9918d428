/** x86-64 machine code used by the conformance suite, with the assembly each encodes. */
export const code = {
  /** syscall */
  syscall: [0x0f, 0x05],
  /** mov rdi, rax */
  movRdiRax: [0x48, 0x89, 0xc7],
  /** jmp . (a busy loop) */
  spin: [0xeb, 0xfe],
  /** mov rax, [rbx] */
  loadRaxFromRbx: [0x48, 0x8b, 0x03],
  /** mov [rbx], rax */
  storeRaxToRbx: [0x48, 0x89, 0x03],
  /** jmp rbx */
  jmpRbx: [0xff, 0xe3],
  /** int 0x80, the 32-bit system call entry */
  int80: [0xcd, 0x80],
  /** int3 */
  int3: [0xcc],
  /** ud2 */
  ud2: [0x0f, 0x0b],
  /** xor ecx, ecx; div ecx */
  divideByZero: [0x31, 0xc9, 0xf7, 0xf1],
  /** mov rax, fs:[0] */
  loadRaxFromFs0: [0x64, 0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00],
  /** movq rax, xmm0 */
  movqRaxXmm0: [0x66, 0x48, 0x0f, 0x7e, 0xc0],
  /** movq xmm1, rdi */
  movqXmm1Rdi: [0x66, 0x48, 0x0f, 0x6e, 0xcf],
  /** jmp back over the `length` bytes before this two-byte jump */
  jmpBack(length: number): number[] {
    const displacement = -(length + 2);
    if (displacement < -128) throw new RangeError(`jmpBack: ${length} bytes is too far for a short jump`);
    return [0xeb, displacement & 0xff];
  },
};
