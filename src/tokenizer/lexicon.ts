import { readFileSync } from 'node:fs';

import { ModelError } from '../errors/errors.js';
import { foldCodePoint } from './tokenizer.js';
import { toSimplified } from './traditional.js';

/**
 * Word classes of a lexicon file, in bit order. `training/lexicon.py` writes
 * the file and computes the same bits for training.
 */
export const LEXICON_CLASSES = ['person', 'place', 'org', 'word'] as const;

// Roles of a character inside a matched word: first, inner, last.
const ROLES = 3;
// Shortest and longest words the training code matches.
const MIN_LENGTH = 2;
const MAX_LENGTH = 10;
const EMPTY = -1;
// Lines parsed between two returns to the event loop: a few ms of work.
const LINES_PER_STEP = 8192;

/**
 * A character trie whose edges live in an open-addressing hash table of
 * typed arrays, keyed by (node, code point), so that loading a lexicon of
 * a hundred thousand words makes no object per word.
 */
class Trie {
  /** Class bit set of the word ending at each node; 0 for a prefix only. */
  classes: Uint8Array;
  nodes: number;
  private edgeNode: Int32Array;
  private edgeCp: Int32Array;
  private edgeChild: Int32Array;
  private edges = 0;

  /**
   * An empty trie, or a read-only one over arrays from {@link toShared}:
   * add() must not run on the latter, since other threads read it.
   */
  constructor(shared?: SharedTrie) {
    this.classes = shared?.classes ?? new Uint8Array(1 << 16);
    this.nodes = shared ? shared.classes.length : 1;
    this.edgeNode = shared?.edgeNode ?? new Int32Array(1 << 16).fill(EMPTY);
    this.edgeCp = shared?.edgeCp ?? new Int32Array(1 << 16);
    this.edgeChild = shared?.edgeChild ?? new Int32Array(1 << 16);
  }

  /** Copies the arrays of this trie into shared memory. */
  toShared(): SharedTrie {
    return {
      classes: sharedCopy(this.classes.subarray(0, this.nodes)),
      edgeNode: sharedCopy(this.edgeNode),
      edgeCp: sharedCopy(this.edgeCp),
      edgeChild: sharedCopy(this.edgeChild),
    };
  }

  /** Returns the child of node along cp, or EMPTY. */
  child(node: number, cp: number): number {
    const mask = this.edgeNode.length - 1;
    for (let slot = slotOf(node, cp, mask); ; slot = (slot + 1) & mask) {
      const at = this.edgeNode[slot];
      if (at === EMPTY) return EMPTY;
      if (at === node && this.edgeCp[slot] === cp) return this.edgeChild[slot];
    }
  }

  /** Returns the child of node along cp, adding it when missing. */
  add(node: number, cp: number): number {
    const found = this.child(node, cp);
    if (found !== EMPTY) return found;
    if (2 * (this.edges + 1) > this.edgeNode.length) this.grow();
    const mask = this.edgeNode.length - 1;
    let slot = slotOf(node, cp, mask);
    while (this.edgeNode[slot] !== EMPTY) slot = (slot + 1) & mask;
    const created = this.nodes++;
    if (created >= this.classes.length) {
      const classes = new Uint8Array(this.classes.length * 2);
      classes.set(this.classes);
      this.classes = classes;
    }
    this.edgeNode[slot] = node;
    this.edgeCp[slot] = cp;
    this.edgeChild[slot] = created;
    this.edges++;
    return created;
  }

  private grow(): void {
    const [nodes, cps, children] = [this.edgeNode, this.edgeCp, this.edgeChild];
    const size = nodes.length * 2;
    this.edgeNode = new Int32Array(size).fill(EMPTY);
    this.edgeCp = new Int32Array(size);
    this.edgeChild = new Int32Array(size);
    const mask = size - 1;
    for (let old = 0; old < nodes.length; old++) {
      if (nodes[old] === EMPTY) continue;
      let slot = slotOf(nodes[old], cps[old], mask);
      while (this.edgeNode[slot] !== EMPTY) slot = (slot + 1) & mask;
      this.edgeNode[slot] = nodes[old];
      this.edgeCp[slot] = cps[old];
      this.edgeChild[slot] = children[old];
    }
  }
}

/**
 * The arrays of a built trie in SharedArrayBuffers. Posting it to a thread
 * shares the memory instead of copying it, so every pool thread reads the
 * one trie the main thread built.
 */
export interface SharedTrie {
  classes: Uint8Array;
  edgeNode: Int32Array;
  edgeCp: Int32Array;
  edgeChild: Int32Array;
}

function sharedCopy<T extends Uint8Array | Int32Array>(array: T): T {
  const buffer = new SharedArrayBuffer(array.byteLength);
  const copy = (
    array instanceof Uint8Array
      ? new Uint8Array(buffer)
      : new Int32Array(buffer)
  ) as T;
  copy.set(array);
  return copy;
}

function slotOf(node: number, cp: number, mask: number): number {
  return (Math.imul(node, 0x9e3779b1) ^ Math.imul(cp, 0x85ebca6b)) & mask;
}

/**
 * Dictionary words with their classes (person, place, organisation, plain
 * word), matched against text to give each character one bit per
 * (class, role) pair. Every match counts, also overlapping ones, so the
 * bits do not depend on a segmentation.
 */
export class Lexicon {
  private constructor(
    private readonly trie: Trie,
    /** Words in the lexicon, not counting prefixes. */
    readonly size: number,
  ) {}

  /** Copies the lexicon into shared memory, to post to other threads. */
  toShared(): SharedLexicon {
    return { size: this.size, trie: this.trie.toShared() };
  }

  /** A lexicon over shared memory from {@link toShared}, built in another thread. */
  static fromShared(shared: SharedLexicon): Lexicon {
    return new Lexicon(new Trie(shared.trie), shared.size);
  }

  /**
   * Reads a lexicon file with one `word<TAB>class,class` line per word.
   *
   * @throws ModelError naming the file and line of a malformed entry.
   */
  static fromFile(path: string): Lexicon {
    return Lexicon.parse(readLexiconFile(path), path);
  }

  /** Parses lexicon text; source names it in errors. */
  static parse(text: string, source: string): Lexicon {
    const steps = Lexicon.parseSteps(text, source);
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
    }
  }

  /**
   * Reads a lexicon file as {@link fromFile} does, but returns to the event
   * loop every few thousand lines. The main thread builds the lexicon this
   * way, so it still hands tasks to pool threads as they start.
   *
   * @throws ModelError naming the file and line of a malformed entry.
   */
  static async fromFileYielding(path: string): Promise<Lexicon> {
    const steps = Lexicon.parseSteps(readLexiconFile(path), path);
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Parses lexicon text, yielding every {@link LINES_PER_STEP} lines. */
  private static *parseSteps(
    text: string,
    source: string,
  ): Generator<void, Lexicon> {
    const trie = new Trie();
    let size = 0;
    // Lines are scanned in place rather than split, which would make a
    // string per line.
    let line = 0;
    // A byte order mark from a Windows editor would join the first word.
    const first = text.charCodeAt(0) === 0xfeff ? 1 : 0;
    for (let at = first; at < text.length;) {
      line++;
      if (line % LINES_PER_STEP === 0) yield;
      let eol = text.indexOf('\n', at);
      if (eol < 0) eol = text.length;
      const next = eol + 1;
      if (eol > at && text.charCodeAt(eol - 1) === 0x0d) eol--;
      if (eol === at) {
        at = next;
        continue;
      }
      let tab = at;
      while (tab < eol && text.charCodeAt(tab) !== 0x09) tab++;
      if (tab === at || tab === eol) {
        throw new ModelError(
          `${source}:${line}: expected word<TAB>classes, got ${JSON.stringify(text.slice(at, eol))}`,
        );
      }
      let mask = 0;
      for (let from = tab + 1; from <= eol;) {
        // A scan, not indexOf: indexOf would run on past this line.
        let to = from;
        while (to < eol && text.charCodeAt(to) !== 0x2c) to++;
        const c = classAt(text, from, to);
        if (c < 0) {
          throw new ModelError(
            `${source}:${line}: unknown class ${JSON.stringify(text.slice(from, to))}; known: ${LEXICON_CLASSES.join(', ')}`,
          );
        }
        mask |= 1 << c;
        from = to + 1;
      }
      // Words are folded as the training code folds them, but not mapped
      // to simplified Chinese: the training code cannot, and a word such
      // as 有利於 would then match text it never matched in training.
      let node = 0;
      let length = 0;
      for (let i = at; i < tab; i++) {
        const cp = text.codePointAt(i)!;
        if (cp > 0xffff) i++;
        node = trie.add(node, foldCodePoint(cp));
        length++;
      }
      at = next;
      // The training code skips words outside these lengths, so must we.
      if (length < MIN_LENGTH || length > MAX_LENGTH) continue;
      if (trie.classes[node] === 0) size++;
      trie.classes[node] |= mask;
    }
    return new Lexicon(trie, size);
  }

  /**
   * Returns one integer per code point of text: bit `class * 3 + role` is
   * set when a word of that class starts (role 0), continues (1) or ends
   * (2) at that character. Characters are width- and case-folded and
   * mapped to simplified Chinese first, as the tokenizer does.
   */
  bits(text: string): Int32Array {
    const cps = new Int32Array(text.length);
    let n = 0;
    for (let i = 0; i < text.length; i++) {
      const cp = text.codePointAt(i)!;
      if (cp > 0xffff) i++;
      cps[n++] = toSimplified(foldCodePoint(cp));
    }
    const out = new Int32Array(n);
    const trie = this.trie;
    for (let i = 0; i + 1 < n; i++) {
      let node = trie.child(0, cps[i]);
      const last = Math.min(n, i + MAX_LENGTH) - 1;
      for (let j = i + 1; j <= last && node !== EMPTY; j++) {
        node = trie.child(node, cps[j]);
        if (node !== EMPTY && trie.classes[node] !== 0) {
          mark(out, i, j, trie.classes[node]);
        }
      }
    }
    return out;
  }
}

/** A lexicon whose trie lives in SharedArrayBuffers; see {@link Lexicon.toShared}. */
export interface SharedLexicon {
  size: number;
  trie: SharedTrie;
}

function readLexiconFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ModelError(
      `lexicon unreadable: ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Index of the class named by text[from, to), or -1; makes no string. */
function classAt(text: string, from: number, to: number): number {
  return LEXICON_CLASSES.findIndex(
    (name) => name.length === to - from && text.startsWith(name, from),
  );
}

function mark(out: Int32Array, first: number, last: number, mask: number) {
  for (let c = 0; c < LEXICON_CLASSES.length; c++) {
    if (((mask >> c) & 1) === 0) continue;
    const base = c * ROLES;
    out[first] |= 1 << base;
    for (let k = first + 1; k < last; k++) out[k] |= 1 << (base + 1);
    out[last] |= 1 << (base + 2);
  }
}

/** Loads the lexicon a model folder names, or returns undefined when it names none. */
export function loadLexicon(folder: {
  lexiconPath?: string;
}): Lexicon | undefined {
  return folder.lexiconPath !== undefined
    ? Lexicon.fromFile(folder.lexiconPath)
    : undefined;
}
