import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream';

import { InputError } from '../errors/errors.js';
import {
  completeLength,
  createDecodeStream,
  INVALID_BYTES,
  isSupportedEncoding,
} from '../producer/decode-stream.js';
import type { GoldSpan } from './gold-readers.js';

// Helpers that every gold format reader shares.

/** A span with its corpus tag, before the tag is mapped to a label. */
export interface TaggedSpan {
  start: number;
  end: number;
  tag: string;
}

/** One line of the file without its line break. */
export interface Line {
  text: string;
  /** 1-based line number. */
  number: number;
}

/** Builds the error for a line that cannot be parsed. */
export function lineError(
  file: string,
  line: number,
  reason: string,
): InputError {
  return new InputError(`${file}:${line}: ${reason}`);
}

/**
 * Streams the lines of a file, decoded, without their line breaks.
 *
 * @param defaultFor - the format whose default encoding `encoding` is, when
 *   `--encoding` was not given, for messages
 * @throws InputError for an unknown encoding, a file that cannot be read, a
 *   UTF-8 file read in another encoding or a line with bytes that are
 *   invalid in the encoding
 */
export async function* readLines(
  file: string,
  encoding: string,
  defaultFor?: string,
): AsyncGenerator<Line> {
  if (!isSupportedEncoding(encoding)) {
    throw new InputError(
      `--encoding: unknown encoding "${encoding}"; try utf-8, gbk or gb18030`,
    );
  }
  await checkFile(file);
  await checkNotUtf8(file, encoding, defaultFor);

  // pipeline() destroys the file stream when the reader stops early or fails.
  const decoded = pipeline(
    createReadStream(file),
    createDecodeStream(encoding),
    () => {},
  ).setEncoding('utf8');
  let rest = '';
  let number = 0;
  for await (const chunk of decoded as AsyncIterable<string>) {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) yield checkLine(file, ++number, part, encoding);
  }
  if (rest !== '') yield checkLine(file, ++number, rest, encoding);
}

async function checkFile(file: string): Promise<void> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    throw new InputError(
      `cannot read gold file ${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (!info.isFile()) {
    throw new InputError(`gold file ${file} is not a regular file`);
  }
}

// Bytes from the start of a gold file that are checked for UTF-8.
const SNIFF_BYTES = 64 * 1024;
// Non-ASCII characters from which valid UTF-8 is taken to be UTF-8. By an
// estimate, a GBK character is valid UTF-8 by chance about one time in
// five, so 8 GBK characters in a row pass as UTF-8 a few times in a million.
// NOTE: a UTF-8 file with fewer non-ASCII characters in its first 64 KiB
// is read as garbled text, unless the whole file is that short and read in
// the format's default encoding (see checkNotUtf8).
const MIN_UTF8_CHARACTERS = 8;

/**
 * Throws when a file to be read in an encoding other than UTF-8 starts with
 * valid UTF-8 that has non-ASCII characters. GBK decodes most UTF-8 bytes
 * to other Chinese characters, so such a file would be read as garbled text
 * and labels, with no invalid byte to stop it.
 */
async function checkNotUtf8(
  file: string,
  encoding: string,
  defaultFor: string | undefined,
): Promise<void> {
  if (/^utf-?8$/i.test(encoding)) return;
  const head = await readHead(file);
  // A sample that ends with the file is whole, but one cut at SNIFF_BYTES
  // may end inside a multi-byte sequence.
  const sample =
    head.length === SNIFF_BYTES ? head.subarray(0, completeLength(head)) : head;
  if (!isUtf8(sample)) return;
  const nonAscii = countNonAscii(sample.toString('utf8'));
  // A small file's few characters are weak evidence either way. When the
  // encoding is only the format's default, UTF-8 is the likelier reading,
  // and a GBK file can still be read with an explicit --encoding gbk.
  const whole = head.length < SNIFF_BYTES;
  const least = whole && defaultFor !== undefined ? 1 : MIN_UTF8_CHARACTERS;
  if (nonAscii < least) return;
  const readAs =
    defaultFor === undefined
      ? `--encoding ${encoding}`
      : `${encoding}, the default encoding of --format ${defaultFor}`;
  throw new InputError(
    `gold file ${file} looks like UTF-8: its first ${sample.length} bytes are valid UTF-8 with ${nonAscii} non-ASCII character${nonAscii === 1 ? '' : 's'}. ` +
      `It is read as ${readAs}, which would garble its text and labels. Pass --encoding utf-8` +
      (defaultFor === undefined
        ? ''
        : `, or --encoding ${encoding} if it is ${encoding}`),
  );
}

async function readHead(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function countNonAscii(text: string): number {
  let count = 0;
  for (const char of text) if (char.charCodeAt(0) > 0x7f) count++;
  return count;
}

function checkLine(
  file: string,
  number: number,
  text: string,
  encoding: string,
): Line {
  if (text.includes(INVALID_BYTES)) {
    // The usual other encoding of Chinese gold files, not the one in use.
    const other = /^utf-?8$/i.test(encoding) ? 'gbk' : 'utf-8';
    throw lineError(
      file,
      number,
      `invalid bytes for encoding ${encoding}; set --encoding to the ` +
        `file's encoding, such as ${other}`,
    );
  }
  // The UTF-8 decoder keeps a byte order mark; it is not a character.
  const unmarked = number === 1 ? text.replace(/^\uFEFF/, '') : text;
  return { text: unmarked, number };
}

/** Maps each span's tag to its label and drops spans of unmapped tags. */
export function mapTags(
  spans: TaggedSpan[],
  labels: ReadonlyMap<string, string>,
): GoldSpan[] {
  const out: GoldSpan[] = [];
  for (const { start, end, tag } of spans) {
    const label = labels.get(tag);
    if (label !== undefined) out.push({ start, end, label });
  }
  return out;
}
