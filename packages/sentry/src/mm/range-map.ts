/**
 * A sorted list of non-overlapping address ranges [start, end), used for VMAs and for the table of
 * committed memory. Ranges are kept in an array: a process has tens to hundreds of them, and binary
 * search over an array beats a tree at that size.
 */

export interface Range {
  start: number;
  end: number;
}

export class RangeMap<T extends Range> {
  readonly items: T[] = [];

  /** `slice(item, start, end)` returns a copy of `item` narrowed to [start, end) within it. */
  constructor(private readonly slice: (item: T, start: number, end: number) => T) {}

  /** Index of the first range that ends after `addr`; items.length when there is none. */
  lowerBound(addr: number): number {
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.items[middle].end <= addr) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Returns the range containing `addr`, if any. */
  find(addr: number): T | undefined {
    const item = this.items[this.lowerBound(addr)];
    return item !== undefined && item.start <= addr ? item : undefined;
  }

  /** Returns the ranges overlapping [start, end), in order. */
  overlapping(start: number, end: number): T[] {
    const result: T[] = [];
    for (let i = this.lowerBound(start); i < this.items.length && this.items[i].start < end; i++) {
      result.push(this.items[i]);
    }
    return result;
  }

  /** Returns whether no range overlaps [start, end). */
  isFree(start: number, end: number): boolean {
    const item = this.items[this.lowerBound(start)];
    return item === undefined || item.start >= end;
  }

  /** Inserts a range that overlaps no other. */
  insert(item: T): void {
    const index = this.lowerBound(item.start);
    this.items.splice(index, 0, item);
  }

  /**
   * Removes [start, end) from the map, splitting ranges that stick out of it, and returns the
   * removed parts clipped to [start, end), in order.
   */
  remove(start: number, end: number): T[] {
    const first = this.lowerBound(start);
    let last = first;
    while (last < this.items.length && this.items[last].start < end) last++;
    if (first === last) return [];

    const removed: T[] = [];
    const kept: T[] = [];
    for (let i = first; i < last; i++) {
      const item = this.items[i];
      if (item.start < start) kept.push(this.slice(item, item.start, start));
      removed.push(this.slice(item, Math.max(item.start, start), Math.min(item.end, end)));
      if (item.end > end) kept.push(this.slice(item, end, item.end));
    }
    this.items.splice(first, last - first, ...kept);
    return removed;
  }

  /** Splits the range containing `addr` so that a range starts at `addr`. */
  splitAt(addr: number): void {
    const index = this.lowerBound(addr);
    const item = this.items[index];
    if (item === undefined || item.start >= addr) return;
    this.items.splice(index, 1, this.slice(item, item.start, addr), this.slice(item, addr, item.end));
  }

  /** Merges touching neighbours in [start, end] for which `same(left, right)` is true. */
  coalesce(start: number, end: number, same: (left: T, right: T) => boolean): void {
    let index = Math.max(0, this.lowerBound(start) - 1);
    while (index + 1 < this.items.length && this.items[index].start <= end) {
      const left = this.items[index];
      const right = this.items[index + 1];
      if (left.end === right.start && same(left, right)) {
        this.items.splice(index, 2, this.slice({ ...left, end: right.end }, left.start, right.end));
      } else {
        index++;
      }
    }
  }
}
