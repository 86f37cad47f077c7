import { readFileSync } from 'node:fs';

import { ModelError } from '../errors/errors.js';
import { toSimplified } from './traditional.js';

/**
 * Folds one code point for vocabulary lookup: full-width ASCII to half-width,
 * whitespace to a space and case to lower case. The result is always one
 * code point, so token positions stay equal to code-point offsets.
 * The training code applies the same rules before building its vocabulary.
 */
export function foldCodePoint(cp: number): number {
  // Most text is CJK ideographs, which have no case, width or space forms.
  if (cp >= 0x3400 && cp <= 0x9fff) return cp;
  if (cp >= 0xff01 && cp <= 0xff5e) cp -= 0xfee0;
  if (WHITESPACE.has(cp)) return 0x20;
  const ch = String.fromCodePoint(cp);
  const lower = ch.toLowerCase();
  if (lower !== ch && lower.length === ch.length) {
    const folded = lower.codePointAt(0)!;
    // Only a one-to-one mapping keeps offsets; 'İ' lowers to two code points.
    if (String.fromCodePoint(folded) === lower) return folded;
  }
  return cp;
}

const WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0xa0, 0x2028, 0x2029, 0x3000,
]);

/** Special tokens every model vocabulary must contain. */
export const SPECIAL_TOKENS = ['[CLS]', '[SEP]', '[UNK]', '[PAD]'] as const;

/** Character-level tokenizer: one token per Unicode code point. */
export class Tokenizer {
  readonly cls: number;
  readonly sep: number;
  readonly unk: number;
  readonly pad: number;
  private readonly index: Map<string, number>;

  /**
   * @param tokens - the vocabulary, in which a token's id is its index
   * @param path - the vocabulary file, named in errors
   * @throws ModelError when a special token is missing
   */
  constructor(tokens: string[], path?: string) {
    this.index = new Map();
    tokens.forEach((token, id) => {
      if (!this.index.has(token)) this.index.set(token, id);
    });
    const missing = SPECIAL_TOKENS.filter((t) => !this.index.has(t));
    if (missing.length > 0) {
      const name = path === undefined ? 'vocabulary' : `vocabulary ${path}`;
      throw new ModelError(
        `${name} lacks special tokens: ${missing.join(', ')}; ` +
          `it needs ${SPECIAL_TOKENS.join(', ')}, each on a line of its own`,
      );
    }
    this.cls = this.index.get('[CLS]')!;
    this.sep = this.index.get('[SEP]')!;
    this.unk = this.index.get('[UNK]')!;
    this.pad = this.index.get('[PAD]')!;
  }

  /**
   * Reads a vocabulary file with one token per line, id = line number.
   *
   * @throws ModelError naming the file when it cannot be read or lacks a
   *   special token
   */
  static fromFile(path: string): Tokenizer {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ModelError(
        `cannot read vocabulary ${path}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    // Editors on Windows may start the file with a byte order mark, which
    // would otherwise become part of the first token.
    const lines = text.replace(/^\uFEFF/, '').split('\n');
    if (lines.at(-1) === '') lines.pop();
    // Vocabularies written on Windows end lines with CR; a lone " " is a token.
    return new Tokenizer(
      lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l)),
      path,
    );
  }

  get size(): number {
    return this.index.size;
  }

  /**
   * Encodes text to one id per code point; unknown characters become [UNK]
   * and keep their position.
   */
  encode(text: string): Int32Array {
    const ids = new Int32Array(countCodePoints(text));
    let i = 0;
    for (const ch of text) {
      ids[i++] = this.lookup(ch);
    }
    return ids;
  }

  /**
   * Looks up the folded, simplified form first, then the folded form, then
   * the character as written, so a vocabulary with traditional characters
   * still matches them.
   */
  private lookup(ch: string): number {
    const foldedCp = foldCodePoint(ch.codePointAt(0)!);
    const simplified = String.fromCodePoint(toSimplified(foldedCp));
    const folded = String.fromCodePoint(foldedCp);
    return (
      this.index.get(simplified) ??
      this.index.get(folded) ??
      this.index.get(ch) ??
      this.unk
    );
  }
}

/** Counts code points, the unit of every offset in this project. */
export function countCodePoints(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // A high surrogate followed by a low one is a single code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Returns the code points of text in [start, end) as a string. */
export function sliceCodePoints(
  text: string,
  start: number,
  end: number,
): string {
  return codePointIndex(text).slice(start, end);
}

/**
 * Maps code-point offsets to UTF-16 offsets for one string, so many slices
 * of the same text cost one pass.
 */
export function codePointIndex(text: string): {
  slice(start: number, end: number): string;
  length: number;
  /** The text's code points, one string each. */
  chars: readonly string[];
} {
  const units: number[] = [];
  for (let i = 0; i < text.length; i++) {
    units.push(i);
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  units.push(text.length);
  let chars: string[] | undefined;
  return {
    length: units.length - 1,
    slice: (start, end) => text.slice(units[start], units[end]),
    get chars() {
      chars ??= [...text];
      return chars;
    },
  };
}
