/**
 * The access bits of every range an address space has mapped, kept as sorted, disjoint intervals.
 * Fault classification uses it to tell a write to a read-only page from other faults.
 */
interface Interval {
  start: number;
  end: number;
  access: number;
}

export class RangeMap {
  private intervals: Interval[] = [];

  /** Records `access` for [start, end), replacing whatever was recorded there. */
  set(start: number, end: number, access: number): void {
    this.remove(start, end);
    const index = this.firstEndingAfter(start);
    this.intervals.splice(index, 0, { start, end, access });
  }

  /** Forgets [start, end), splitting intervals that straddle its edges. */
  remove(start: number, end: number): void {
    const first = this.firstEndingAfter(start);
    let last = first;
    const remainders: Interval[] = [];
    while (last < this.intervals.length && this.intervals[last].start < end) {
      const interval = this.intervals[last];
      if (interval.start < start) remainders.push({ start: interval.start, end: start, access: interval.access });
      if (interval.end > end) remainders.push({ start: end, end: interval.end, access: interval.access });
      last++;
    }
    this.intervals.splice(first, last - first, ...remainders);
  }

  /** Returns the access bits recorded for `addr`, or undefined when nothing is mapped there. */
  get(addr: number): number | undefined {
    const index = this.firstEndingAfter(addr);
    const interval = this.intervals[index];
    return interval !== undefined && interval.start <= addr ? interval.access : undefined;
  }

  /** Index of the first interval whose end lies above `addr` (binary search). */
  private firstEndingAfter(addr: number): number {
    let low = 0;
    let high = this.intervals.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.intervals[middle].end <= addr) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
