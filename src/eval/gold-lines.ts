import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream';

import { InputError } from '../errors/errors.js';
import {
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
 * @throws InputError for an unknown encoding, a file that cannot be read or
 *   a line with bytes that are invalid in the encoding
 */
export async function* readLines(
  file: string,
  encoding: string,
): AsyncGenerator<Line> {
  if (!isSupportedEncoding(encoding)) {
    throw new InputError(
      `--encoding: unknown encoding "${encoding}"; try utf-8, gbk or gb18030`,
    );
  }
  await checkFile(file);

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

function checkLine(
  file: string,
  number: number,
  text: string,
  encoding: string,
): Line {
  if (text.includes(INVALID_BYTES)) {
    throw lineError(
      file,
      number,
      `invalid bytes for encoding ${encoding}; set --encoding to the ` +
        `file's encoding, such as gbk`,
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
