import { isUtf8 } from 'node:buffer';

import iconv from 'iconv-lite';

import { InputError } from '../errors/errors.js';
import { countCodePoints } from '../tokenizer/tokenizer.js';
import {
  completeLength,
  decodeUtf8Lenient,
  INVALID_BYTES,
} from './decode-stream.js';
import { inputName } from './open-input.js';

// Share of invalid characters in the first 64 KiB above which the file is
// taken to be in another encoding rather than to contain a few bad rows.
const MAX_INVALID_SHARE = 0.02;
const MIN_INVALID_CHARS = 8;

/**
 * Throws when the first bytes of an input are clearly not in the encoding.
 *
 * @param head - up to the first SNIFF_BYTES bytes, decompressed
 */
export function sniffEncoding(
  file: string,
  head: Buffer,
  encoding: string,
): void {
  checkByteOrderMark(file, head, encoding);
  checkUtf16(file, head, encoding);
  // Invalid UTF-8 decodes to INVALID_BYTES; other decoders give U+FFFD.
  const utf8 = /^utf-?8$/i.test(encoding);
  const text = utf8 ? decodeUtf8Lenient(head) : iconv.decode(head, encoding);
  const marker = utf8 ? INVALID_BYTES : '\ufffd';
  // The last character may be cut by the 64 KiB boundary.
  const body = text.slice(0, -1);
  const bad = countOccurrences(body, marker);
  // A few bad rows in a small file are rejected row by row instead.
  if (bad < MIN_INVALID_CHARS) return;
  const total = Math.max(1, countCodePoints(body));
  if (bad / total > MAX_INVALID_SHARE) {
    throw new InputError(
      `${inputName(file)} does not look like ${encoding}: ${bad} of the first ${total} characters are invalid. ` +
        otherEncodingAdvice(head, encoding),
    );
  }
}

/**
 * Returns the sentence that ends a message about an input that is not in
 * the given encoding. It never names the given encoding.
 */
function otherEncodingAdvice(head: Buffer, encoding: string): string {
  // Text in another encoding is rarely valid UTF-8 by chance, so valid
  // UTF-8 with many characters invalid in the given encoding is taken to be
  // UTF-8.
  const utf8 = /^utf-?8$/i.test(encoding);
  const sample = head.subarray(0, completeLength(head));
  if (!utf8 && isUtf8(sample)) {
    return `Its first ${sample.length} bytes are valid UTF-8: pass --encoding utf-8`;
  }
  return `Pass --encoding with the encoding the file was saved in${gb18030Note(encoding)}`;
}

/**
 * Returns the note, for advice on which `--encoding` to pass, that most
 * Excel exports in China are GB18030, or '' when gb18030 is the given one.
 */
export function gb18030Note(encoding: string): string {
  return canonicalName(encoding) === 'gb18030'
    ? ''
    : ' (gb18030 for most Excel exports in China)';
}

/**
 * Returns an encoding name in the form in which iconv-lite compares names,
 * such as utf16le for UTF-16LE.
 */
function canonicalName(encoding: string): string {
  return encoding.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** A byte order mark and the encoding it marks. */
interface ByteOrderMark {
  /** Name for `--encoding`. */
  encoding: string;
  bytes: Buffer;
}

// UTF-32LE first, because its mark starts with the mark of UTF-16LE.
const BYTE_ORDER_MARKS: ByteOrderMark[] = [
  { encoding: 'utf-8', bytes: Buffer.from([0xef, 0xbb, 0xbf]) },
  { encoding: 'utf-32le', bytes: Buffer.from([0xff, 0xfe, 0x00, 0x00]) },
  { encoding: 'utf-32be', bytes: Buffer.from([0x00, 0x00, 0xfe, 0xff]) },
  { encoding: 'utf-16le', bytes: Buffer.from([0xff, 0xfe]) },
  { encoding: 'utf-16be', bytes: Buffer.from([0xfe, 0xff]) },
];

/** Returns the byte order mark that the input starts with, if any. */
export function findByteOrderMark(head: Buffer): ByteOrderMark | undefined {
  return BYTE_ORDER_MARKS.find((mark) =>
    head.subarray(0, mark.bytes.length).equals(mark.bytes),
  );
}

/**
 * Throws when the input starts with a byte order mark that the encoding
 * does not decode to U+FEFF, such as the UTF-8 mark of a file read as
 * gb18030. Without this check the mark becomes part of the first column
 * name, and a small file has too few rows for the share of invalid
 * characters to show the wrong encoding.
 */
function checkByteOrderMark(
  file: string,
  head: Buffer,
  encoding: string,
): void {
  const mark = findByteOrderMark(head);
  if (!mark) return;
  // Four bytes hold the longest mark. They also let --encoding utf-16le
  // read FF FE 00 00 as its own mark followed by U+0000.
  const start = iconv.decode(head.subarray(0, 4), encoding, {
    stripBOM: false,
  });
  if (start.startsWith('\ufeff')) return;
  const bytes = [...mark.bytes].map((b) =>
    b.toString(16).toUpperCase().padStart(2, '0'),
  );
  throw new InputError(
    `${inputName(file)} starts with the ${mark.encoding.toUpperCase()} byte order mark ${bytes.join(' ')} but is read as ${encoding}. ` +
      `Pass --encoding ${mark.encoding}`,
  );
}

// Maximum bytes of the header line that are searched for the NUL bytes of
// UTF-16 text.
const UTF16_SNIFF_BYTES = 1024;
// NUL bytes in the header line, all at odd or all at even positions, from
// which the input is taken to be UTF-16: "text" and its line end give 5.
const MIN_UTF16_NULS = 4;

// Encodings, as normalised by checkUtf16, with one UTF-16 byte order.
const UTF16_BYTE_ORDERS: Record<string, string> = {
  utf16le: 'utf-16le',
  ucs2: 'utf-16le',
  utf16be: 'utf-16be',
};

/**
 * Throws when the header line looks like UTF-16 text in another encoding,
 * such as utf-8, gb18030 or the other UTF-16 byte order. Without this check
 * a UTF-16 file without a byte order mark gives a header full of NULs.
 */
function checkUtf16(file: string, head: Buffer, encoding: string): void {
  const guess = guessUtf16(head);
  if (!guess) return;
  const requested = canonicalName(encoding);
  const byteOrder = UTF16_BYTE_ORDERS[requested];
  if (byteOrder === guess.encoding) return;
  // NOTE: utf-16 without a byte order, utf-32 and ucs-4 are left to their
  // decoders.
  if (byteOrder === undefined && /^(utf16|utf32|ucs4)/.test(requested)) {
    return;
  }
  throw new InputError(
    `${inputName(file)} does not look like ${encoding}: ${guess.nuls} of the first ${guess.sampled} bytes are NUL bytes, ` +
      `as in ${guess.encoding.toUpperCase()} text without a byte order mark. Pass --encoding ${guess.encoding}`,
  );
}

/**
 * Guesses the byte order of UTF-16 text from the NUL bytes of its header
 * line. An ASCII character such as a letter, a comma or the line end has a
 * NUL high byte, which comes second in UTF-16LE and first in UTF-16BE.
 * Returns undefined for a header line without many such bytes.
 */
function guessUtf16(
  head: Buffer,
): { encoding: string; nuls: number; sampled: number } | undefined {
  // The sample ends after the two bytes of the line feed in either order.
  const lineEnd = head.indexOf(0x0a);
  const length = lineEnd < 0 ? head.length : Math.floor(lineEnd / 2) * 2 + 2;
  const sample = head.subarray(0, Math.min(length, UTF16_SNIFF_BYTES));
  let even = 0;
  let odd = 0;
  for (let i = 0; i < sample.length; i++) {
    if (sample[i] !== 0) continue;
    if (i % 2 === 0) even++;
    else odd++;
  }
  const nuls = Math.max(even, odd);
  // A CJK character such as 一 (U+4E00) has a NUL low byte, so the other
  // positions may hold a few NUL bytes too.
  const oneSided = Math.min(even, odd) * 4 <= nuls;
  // At least a quarter of the characters of the line are ASCII.
  const dense = nuls * 8 >= sample.length;
  if (nuls < MIN_UTF16_NULS || !oneSided || !dense) return undefined;
  const encoding = odd > even ? 'utf-16le' : 'utf-16be';
  return { encoding, nuls, sampled: sample.length };
}

/** Counts the occurrences of a one-unit string in text. */
function countOccurrences(text: string, unit: string): number {
  let count = 0;
  for (let i = text.indexOf(unit); i >= 0; i = text.indexOf(unit, i + 1)) {
    count++;
  }
  return count;
}
