import { constants } from 'node:buffer';

const INITIAL_IDS = 1024;
const INITIAL_BYTES = 16 * 1024;
// Offsets into the byte store are 32-bit.
const MAX_BYTES = Math.min(constants.MAX_LENGTH, 2 ** 32 - 1);
const UNPAIRED_SURROGATE =
  /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// Line numbers are stored as 32-bit unsigned integers, where 0 means none.
const MAX_LINE = 2 ** 32 - 1;

/**
 * An exact set of document ids, each with the input line it was first added
 * at, kept as UTF-8 bytes in typed arrays outside the V8 heap. `extract`
 * adds every id of its input to reject duplicates and name the first line.
 * A JavaScript `Set` of 1.3 million short ids grew the process by about
 * 200 bytes of RSS per id (bench/large-input.ts), because the garbage
 * collector lets its heap grow to a multiple of the live data. Here an id
 * costs its UTF-8 length plus 20 bytes, and up to twice that right after a
 * table has doubled.
 */
export class IdSet {
  /** UTF-8 bytes of every id, one after another. */
  private bytes = Buffer.allocUnsafe(INITIAL_BYTES);
  private used = 0;
  /** End offset in `bytes` of id k; id k starts where id k - 1 ends. */
  private ends: Uint32Array = new Uint32Array(INITIAL_IDS);
  private hashes: Uint32Array = new Uint32Array(INITIAL_IDS);
  /** Line of id k, or 0 when it was added without one. */
  private lines: Uint32Array = new Uint32Array(INITIAL_IDS);
  /** Open-addressing table with linear probing of id index + 1; 0 is empty. */
  private slots = new Uint32Array(INITIAL_IDS * 2);
  private count = 0;

  // UTF-8 turns every unpaired surrogate into U+FFFD, which would make
  // distinct ids equal, so such ids are kept as strings, mapped to their
  // lines.
  private readonly malformed = new Map<string, number>();

  /** Number of ids in the set. */
  get size(): number {
    return this.count + this.malformed.size;
  }

  /**
   * Adds an id, and the line it was read at if the set does not contain it
   * yet.
   *
   * @param line - 1-based input line. A line of 0 or past 2^32 - 1 is not
   *   stored.
   * @returns false when the set already contained the id, else true
   * @throws RangeError when the ids together pass 4 GiB of UTF-8
   */
  add(id: string, line = 0): boolean {
    const stored = Number.isInteger(line) && line <= MAX_LINE ? line : 0;
    if (UNPAIRED_SURROGATE.test(id)) {
      if (this.malformed.has(id)) return false;
      this.malformed.set(id, stored);
      return true;
    }
    const length = Buffer.byteLength(id);
    this.reserveBytes(length);
    // The id is written after the stored ids and kept only if it is new.
    const start = this.used;
    this.bytes.write(id, start, length, 'utf8');
    const hash = fnv1a(this.bytes, start, start + length);
    const { slot, index } = this.find(hash, start, length);
    if (index >= 0) return false;
    this.insert(slot, hash, start + length, stored);
    return true;
  }

  /**
   * Returns the line an id was first added at, or undefined when the set
   * does not contain the id or stores no line for it.
   */
  firstLine(id: string): number | undefined {
    if (UNPAIRED_SURROGATE.test(id)) return this.malformed.get(id) || undefined;
    const length = Buffer.byteLength(id);
    this.reserveBytes(length);
    // The id is written after the stored ids, where add() writes it too.
    this.bytes.write(id, this.used, length, 'utf8');
    const hash = fnv1a(this.bytes, this.used, this.used + length);
    const { index } = this.find(hash, this.used, length);
    return index >= 0 ? this.lines[index] || undefined : undefined;
  }

  /**
   * Looks up the id whose bytes are at bytes[start, start + length). Returns
   * its index, or -1 and the empty slot where it would go.
   */
  private find(
    hash: number,
    start: number,
    length: number,
  ): { slot: number; index: number } {
    const mask = this.slots.length - 1;
    let slot = hash & mask;
    for (; this.slots[slot] !== 0; slot = (slot + 1) & mask) {
      const k = this.slots[slot] - 1;
      if (this.hashes[k] === hash && this.equals(k, start, length)) {
        return { slot, index: k };
      }
    }
    return { slot, index: -1 };
  }

  private insert(slot: number, hash: number, end: number, line: number): void {
    if (this.count === this.ends.length) {
      this.ends = grow(this.ends);
      this.hashes = grow(this.hashes);
      this.lines = grow(this.lines);
    }
    const k = this.count++;
    this.ends[k] = end;
    this.hashes[k] = hash;
    this.lines[k] = line;
    this.used = end;
    this.slots[slot] = k + 1;
    // A table at most half full keeps probe sequences short.
    if (this.count * 2 > this.slots.length) this.rehash();
  }

  private equals(k: number, start: number, length: number): boolean {
    const from = k === 0 ? 0 : this.ends[k - 1];
    if (this.ends[k] - from !== length) return false;
    for (let i = 0; i < length; i++) {
      if (this.bytes[from + i] !== this.bytes[start + i]) return false;
    }
    return true;
  }

  private reserveBytes(length: number): void {
    const needed = this.used + length;
    if (needed <= this.bytes.length) return;
    if (needed > MAX_BYTES) {
      throw new RangeError(
        `document ids: expected at most ${MAX_BYTES} bytes of ids in one input, got ${needed}; split the input file`,
      );
    }
    const bigger = Buffer.allocUnsafe(
      Math.min(MAX_BYTES, Math.max(needed, this.bytes.length * 2)),
    );
    this.bytes.copy(bigger, 0, 0, this.used);
    this.bytes = bigger;
  }

  private rehash(): void {
    const slots = new Uint32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let k = 0; k < this.count; k++) {
      let slot = this.hashes[k] & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = k + 1;
    }
    this.slots = slots;
  }
}

function grow(array: Uint32Array): Uint32Array {
  const bigger = new Uint32Array(array.length * 2);
  bigger.set(array);
  return bigger;
}

/** 32-bit FNV-1a hash of bytes[start, end). */
function fnv1a(bytes: Uint8Array, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    hash ^= bytes[i];
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
