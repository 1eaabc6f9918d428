/**
 * The vCPUs of a KVM platform, shared by its contexts. A context needs a vCPU only while a switch
 * runs its application code, and a thread blocked in a system call holds none, so a few vCPUs serve
 * any number of threads. A vCPU is created the first time no idle one is left, up to the pool's
 * maximum. Beyond that, a switch waits in FIFO order until a vCPU is handed back, and a waiting
 * switch makes the pool interrupt vCPUs that have run one context for longer than a time slice.
 *
 * All application state (registers, FPU state, fs and gs bases) travels in the context's
 * Registers buffer on every switch, so any vCPU can run any context. A vCPU keeps what it last
 * loaded and skips reloading it, which is why a context gets its previous vCPU back when it is idle.
 */
import createDebug from 'debug';
import type { NativeAddon, VcpuHandle, VmHandle } from './native.js';

const debug = createDebug('tsvisor:platform:kvm');

/** How long a vCPU runs one context while other contexts wait, before the pool interrupts it. */
export const TIME_SLICE_MILLISECONDS = 10;

/** The interface the pool uses to drive a context that runs on or waits for a vCPU. */
export interface VcpuUser {
  /** Called from the vCPU's onExit when a pending run of this user has finished. */
  collect(): void;
  /** Called when a vCPU was handed to this user after it waited. */
  grant(vcpu: PooledVcpu): void;
}

export class PooledVcpu {
  /** The context whose switch runs on this vCPU, if any. */
  user: VcpuUser | undefined;
  /** When the current user's run started, in milliseconds of performance.now(). */
  runningSince = 0;

  constructor(readonly handle: VcpuHandle) {}
}

export class VcpuPool {
  private readonly vcpus = new Set<PooledVcpu>();
  private readonly idle: PooledVcpu[] = [];
  private readonly waiting: VcpuUser[] = [];
  private preemptTimer: NodeJS.Timeout | undefined;

  /** @param max maximum number of vCPUs the pool creates, lowered when creating one fails before that */
  constructor(
    private readonly native: NativeAddon,
    private readonly vm: VmHandle,
    private max: number,
  ) {}

  /** Number of vCPUs created so far. */
  get size(): number {
    return this.vcpus.size;
  }

  /**
   * Returns a vCPU for `user`, preferring `previous`, or undefined when every vCPU is busy; then
   * `user` must wait(). Contexts that already wait go first, so a busy caller cannot overtake them.
   */
  acquire(user: VcpuUser, previous: PooledVcpu | undefined): PooledVcpu | undefined {
    if (this.waiting.length > 0) return undefined;

    let vcpu: PooledVcpu | undefined;
    const index = previous === undefined ? -1 : this.idle.indexOf(previous);
    if (index >= 0) {
      vcpu = previous;
      this.idle.splice(index, 1);
    } else {
      vcpu = this.idle.pop() ?? this.create();
    }
    if (vcpu !== undefined) this.assign(vcpu, user);
    return vcpu;
  }

  /** Queues `user` for the next free vCPU, which arrives through `user.grant`. */
  wait(user: VcpuUser): void {
    this.waiting.push(user);
    this.startPreempting();
  }

  /** Removes `user` from the queue. Returns false when it was not waiting. */
  cancelWait(user: VcpuUser): boolean {
    const index = this.waiting.indexOf(user);
    if (index < 0) return false;
    this.waiting.splice(index, 1);
    return true;
  }

  /** Takes a vCPU back from its user after a finished run and gives it to the next waiter, if any. */
  release(vcpu: PooledVcpu): void {
    vcpu.user = undefined;
    const next = this.waiting.shift();
    if (next === undefined) {
      this.idle.push(vcpu);
      return;
    }
    this.assign(vcpu, next);
    next.grant(vcpu);
  }

  /**
   * Destroys a vCPU whose run cannot be collected, because its context was released during the
   * switch. The native side parks it for reuse, and a waiting context gets a fresh one.
   */
  discard(vcpu: PooledVcpu): void {
    vcpu.user = undefined;
    this.vcpus.delete(vcpu);
    this.native.releaseVcpu(vcpu.handle);

    const next = this.waiting[0];
    if (next === undefined) return;
    const fresh = this.create();
    if (fresh === undefined) return;
    this.waiting.shift();
    this.assign(fresh, next);
    next.grant(fresh);
  }

  /** Frees every vCPU. Every context must have been released. */
  close(): void {
    this.stopPreempting();
    for (const vcpu of this.vcpus) this.native.releaseVcpu(vcpu.handle);
    this.vcpus.clear();
    this.idle.length = 0;
    this.waiting.length = 0;
  }

  private assign(vcpu: PooledVcpu, user: VcpuUser): void {
    vcpu.user = user;
    vcpu.runningSince = performance.now();
  }

  /** Creates a vCPU, or returns undefined at the maximum. Throws only when the pool has none at all. */
  private create(): PooledVcpu | undefined {
    if (this.vcpus.size >= this.max) return undefined;

    let vcpu: PooledVcpu | undefined;
    let handle: VcpuHandle;
    try {
      handle = this.native.createVcpu(this.vm, () => vcpu?.user?.collect());
    } catch (error) {
      if (this.vcpus.size === 0) throw error;
      // The host ran out of something a vCPU needs (memory, descriptors), so the vCPUs that
      // exist are all this pool gets.
      this.max = this.vcpus.size;
      if (debug.enabled) debug('no vCPU beyond %d: %s', this.max, (error as Error).message);
      return undefined;
    }
    vcpu = new PooledVcpu(handle);
    this.vcpus.add(vcpu);
    if (debug.enabled) debug('vCPU %d of at most %d created', this.vcpus.size, this.max);
    return vcpu;
  }

  private startPreempting(): void {
    if (this.preemptTimer !== undefined) return;
    this.preemptTimer = setInterval(() => this.preempt(), TIME_SLICE_MILLISECONDS);
    // Pending runs keep Node alive; the timer alone must not.
    this.preemptTimer.unref();
  }

  private stopPreempting(): void {
    if (this.preemptTimer === undefined) return;
    clearInterval(this.preemptTimer);
    this.preemptTimer = undefined;
  }

  /** Interrupts the longest-running vCPUs past their time slice, one per waiting context. */
  private preempt(): void {
    if (this.waiting.length === 0) {
      this.stopPreempting();
      return;
    }
    const deadline = performance.now() - TIME_SLICE_MILLISECONDS;
    const overdue = [...this.vcpus]
      .filter((vcpu) => vcpu.user !== undefined && vcpu.runningSince <= deadline)
      .sort((a, b) => a.runningSince - b.runningSince)
      .slice(0, this.waiting.length);
    for (const vcpu of overdue) this.native.interrupt(vcpu.handle);
  }
}
