import { isUtf8 as isValidUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';

import iconv from 'iconv-lite';

/**
 * Stands in for bytes that are not valid in the input encoding. U+FDD0 is a
 * Unicode noncharacter, so unlike U+FFFD it never occurs in real text and a
 * row containing it can be rejected with certainty.
 */
export const INVALID_BYTES = '\ufdd0';

/** Encodings accepted by `--encoding`, as iconv-lite names them. */
export function isSupportedEncoding(name: string): boolean {
  return isUtf8(name) || iconv.encodingExists(name);
}

function isUtf8(name: string): boolean {
  return /^utf-?8$/i.test(name);
}

/**
 * Returns a transform from bytes of the given encoding to UTF-8 bytes.
 * Invalid UTF-8 becomes INVALID_BYTES; other encodings go through iconv-lite,
 * which strips a UTF-16 byte order mark.
 */
export function createDecodeStream(encoding: string): Transform {
  if (isUtf8(encoding)) return new Utf8Decoder();
  return new IconvDecoder(encoding);
}

/**
 * Decodes with iconv-lite and replaces invalid input by INVALID_BYTES.
 * iconv-lite 0.7.3 returns a string per chunk, and its UTF-16BE decoder ends
 * that string with the high surrogate of a pair that the chunk boundary
 * splits. Node 20's StringDecoder, behind its UTF-16LE decoder, does the
 * same when the boundary falls inside the low surrogate. Both drop an odd
 * last byte of the input without a trace.
 */
class IconvDecoder extends Transform {
  private readonly decoder: iconv.DecoderStream;
  // A high surrogate that ended the text so far, kept back because its low
  // surrogate may be decoded from the next chunk.
  private pendingHigh = '';
  // Bytes in a UTF-16 code unit, or 1. The multi-byte decoders of other
  // encodings, such as GB18030, end an incomplete character with U+FFFD.
  private readonly unitBytes: number;
  private bytesPastLastUnit = 0;
  // iconv-lite 0.7's GB18030 decoder can drop a character when a four-byte
  // sequence is split across chunks, so an incomplete one is kept back.
  private readonly gb: boolean;
  private gbTail: Buffer = Buffer.alloc(0);

  constructor(encoding: string) {
    super({ decodeStrings: true });
    this.decoder = iconv.getDecoder(encoding, { stripBOM: true });
    this.unitBytes = isUtf16(encoding) ? 2 : 1;
    this.gb = isGb(encoding);
  }

  _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: TransformCallback,
  ): void {
    let bytes = chunk;
    if (this.gb) {
      const joined =
        this.gbTail.length > 0 ? Buffer.concat([this.gbTail, chunk]) : chunk;
      const cut = completeGbLength(joined);
      this.gbTail = Buffer.from(joined.subarray(cut));
      bytes = joined.subarray(0, cut);
    }
    this.bytesPastLastUnit =
      (this.bytesPastLastUnit + bytes.length) % this.unitBytes;
    const text = this.pendingHigh + this.decoder.write(bytes);
    const last = text.charCodeAt(text.length - 1);
    const cut = isHighSurrogate(last) ? text.length - 1 : text.length;
    this.pendingHigh = text.slice(cut);
    done(null, cut > 0 ? markInvalid(text.slice(0, cut)) : undefined);
  }

  _flush(done: TransformCallback): void {
    const tail = this.gbTail.length > 0 ? this.decoder.write(this.gbTail) : '';
    let rest = this.pendingHigh + tail + (this.decoder.end() ?? '');
    // Half a code unit at the end cannot be decoded, so the last row is
    // rejected rather than cut short without a trace.
    if (this.bytesPastLastUnit !== 0) rest += INVALID_BYTES;
    done(null, rest ? markInvalid(rest) : undefined);
  }
}

/** Tells whether the encoding is GB18030 or one of its two-byte subsets. */
function isGb(name: string): boolean {
  const canonical = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  return /^(gb18030|gbk|gb2312|cp936|euccn|windows936)$/.test(canonical);
}

/**
 * Returns the length of the longest prefix of GB18030 bytes that ends
 * between two characters. A lead byte 0x81 to 0xFE starts a two-byte
 * character, or a four-byte one when a digit 0x30 to 0x39 follows it.
 */
function completeGbLength(bytes: Buffer): number {
  // No byte of a multi-byte character is below 0x30, so a character starts
  // after the last such byte (a line end or a comma, usually near the end).
  let i = bytes.length;
  while (i > 0 && bytes[i - 1] >= 0x30) i--;
  while (i < bytes.length) {
    const lead = bytes[i];
    if (lead < 0x81 || lead > 0xfe) {
      i += 1;
      continue;
    }
    if (i + 1 >= bytes.length) break;
    const second = bytes[i + 1];
    const width = second >= 0x30 && second <= 0x39 ? 4 : 2;
    if (i + width > bytes.length) break;
    i += width;
  }
  return i;
}

/** Tells whether iconv-lite decodes the encoding as UTF-16. */
function isUtf16(name: string): boolean {
  const canonical = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  return /^(utf16(le|be)?|ucs2)$/.test(canonical);
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

class Utf8Decoder extends Transform {
  private tail: Buffer = Buffer.alloc(0);
  private readonly fatal = new TextDecoder('utf-8', {
    fatal: true,
    ignoreBOM: true,
  });

  _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: TransformCallback,
  ): void {
    const bytes =
      this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : chunk;
    const cut = completeLength(bytes);
    this.tail = Buffer.from(bytes.subarray(cut));
    const complete = bytes.subarray(0, cut);
    // Valid UTF-8 passes through as it is. Decoding it to a string would
    // cost a copy here, and the readable side would encode that string back
    // to the same bytes.
    done(null, isValidUtf8(complete) ? complete : this.decode(complete));
  }

  _flush(done: TransformCallback): void {
    done(null, this.tail.length > 0 ? this.decode(this.tail) : undefined);
  }

  private decode(bytes: Uint8Array): string {
    try {
      return this.fatal.decode(bytes);
    } catch {
      return decodeUtf8Lenient(bytes);
    }
  }
}

/** Length of the prefix that does not end inside a multi-byte sequence. */
export function completeLength(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = bytes[n - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    return sequenceStartLength(b) > back ? n - back : n;
  }
  return n;
}

/** Decodes valid sequences and replaces every invalid byte by INVALID_BYTES. */
export function decodeUtf8Lenient(bytes: Uint8Array): string {
  const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  // The scan below reads byte by byte in JavaScript. A valid prefix decodes
  // the same in one native call, and its sequences end where the scan's
  // would, so the scan starts after it.
  const valid = completeLength(bytes);
  if (valid > 0 && isValidUtf8(bytes.subarray(0, valid))) {
    const head = fatal.decode(bytes.subarray(0, valid));
    return valid === bytes.length
      ? head
      : head + decodeUtf8Lenient(bytes.subarray(valid));
  }
  let out = '';
  let runStart = 0;
  let i = 0;
  while (i < bytes.length) {
    const len = sequenceLength(bytes, i);
    if (len > 0) {
      i += len;
      continue;
    }
    out += fatal.decode(bytes.subarray(runStart, i)) + INVALID_BYTES;
    i += 1;
    runStart = i;
  }
  return out + fatal.decode(bytes.subarray(runStart));
}

/** Length of the valid UTF-8 sequence at i, or 0 when it is invalid. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k] & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1];
    // Overlong forms and UTF-16 surrogates are invalid in UTF-8.
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 >= 0xa0)) return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1];
    if ((c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 >= 0x90)) return 0;
    return 4;
  }
  return 0;
}

/**
 * iconv-lite decodes bytes that are invalid in the encoding to U+FFFD, and
 * passes a UTF-16 lone surrogate through, which becomes U+FFFD once written
 * as UTF-8. Mark both so that the row is rejected.
 * NOTE: a real U+FFFD stored in a GB18030 or UTF-16 file is rejected too.
 */
function markInvalid(text: string): string {
  return text.replace(INVALID_DECODED, INVALID_BYTES);
}

const INVALID_DECODED =
  /\ufffd|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Length that a UTF-8 sequence starting with byte b claims. */
function sequenceStartLength(b: number): number {
  if (b >= 0xf0) return 4;
  if (b >= 0xe0) return 3;
  if (b >= 0xc0) return 2;
  return 1;
}
