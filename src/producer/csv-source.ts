import { createReadStream, statSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { parse, type CsvError } from 'csv-parse';
import iconv from 'iconv-lite';

import { InputError } from '../errors/errors.js';
import {
  createDecodeStream,
  decodeUtf8Lenient,
  INVALID_BYTES,
  isSupportedEncoding,
} from './decode-stream.js';

/** One document read from an input file. */
export interface SourceDocument {
  id: string;
  text: string;
  /** 1-based line where the row starts. */
  line: number;
  /** 0-based position among the file's accepted and rejected rows. */
  index: number;
}

/** A row that could not become a document. */
export interface RejectedRow {
  file: string;
  line: number;
  id?: string;
  reason: string;
}

export type SourceEvent =
  | { type: 'document'; document: SourceDocument }
  | { type: 'reject'; reject: RejectedRow };

/** How to read a CSV export. */
export interface CsvSourceOptions {
  /**
   * Header of the column with the document id. When the header has no such
   * column and the name was not set explicitly, the row number is the id.
   * @defaultValue 'id'
   */
  idColumn?: string;
  /** Whether idColumn was given by the user, which makes it required. */
  idColumnExplicit?: boolean;
  /**
   * Header of the column with the document text.
   * @defaultValue 'text'
   */
  textColumn?: string;
  /**
   * Byte encoding: utf-8, gb18030, gbk, utf-16le, utf-16be, ...
   * @defaultValue 'utf-8'
   */
  encoding?: string;
  /**
   * Field delimiter: one character, or `tab`.
   * @defaultValue ','
   */
  delimiter?: string;
  /**
   * Whether the file is gzip-compressed and is decompressed while read.
   * @defaultValue false
   */
  gunzip?: boolean;
  /** Called with the share of the file read so far, from 0 to 1. */
  onProgress?: (fraction: number) => void;
}

const SNIFF_BYTES = 64 * 1024;
// Share of invalid characters in the first 64 KiB above which the file is
// taken to be in another encoding rather than to contain a few bad rows.
const MAX_INVALID_SHARE = 0.02;
const MIN_INVALID_CHARS = 8;

/**
 * Streams documents and rejected rows from a CSV file with a header row.
 * Handles a byte order mark, quoted newlines and CRLF line ends.
 *
 * @throws InputError when the file is missing, the header lacks the text
 *   column, or the bytes are clearly not in the given encoding
 */
export async function* readCsvDocuments(
  file: string,
  options: CsvSourceOptions = {},
): AsyncGenerator<SourceEvent> {
  const encoding = options.encoding ?? 'utf-8';
  const textColumn = options.textColumn ?? 'text';
  const idColumn = options.idColumn ?? 'id';
  const delimiter = parseDelimiter(options.delimiter ?? ',');
  if (!isSupportedEncoding(encoding)) {
    throw new InputError(
      `--encoding: unknown encoding "${encoding}"; try utf-8, gb18030, gbk or utf-16le`,
    );
  }
  checkNotDirectory(file);
  await sniffEncoding(file, encoding, options.gunzip ?? false);

  const skipped: RejectedRow[] = [];
  const input = createReadStream(file);
  const size = (await stat(file)).size;
  if (options.onProgress) {
    const report = options.onProgress;
    input.on('data', () => report(size > 0 ? input.bytesRead / size : 1));
  }
  const parser = parse({
    bom: true,
    delimiter,
    // csv-parse otherwise takes the line end of the first row for the whole
    // file, and rows with another line end are glued into one record.
    record_delimiter: ['\r\n', '\n', '\r'],
    relax_column_count: true,
    relax_quotes: true,
    // Blank lines come through as records so that line numbers can be
    // counted from the records themselves.
    skip_empty_lines: false,
    skip_records_with_error: true,
    on_skip: (err: CsvError | undefined) => {
      const end = Number(err?.lines ?? lastLine + 1);
      const unclosed = err?.code === 'CSV_QUOTE_NOT_CLOSED';
      // An unclosed quote swallows the rest of the file, so report where the
      // row starts, not where parsing ended.
      skipped.push({
        file,
        line: unclosed ? lastLine + 1 : end,
        reason: unclosed
          ? `malformed CSV: a quote opened in this row is never closed, so the rest of the file (to line ${end}) was read as one field and lost; fix the quote and run again`
          : `malformed CSV: ${err?.message ?? 'unreadable row'}`,
      });
      lastLine = Math.max(lastLine, end);
      return undefined;
    },
  });
  // pipeline destroys every stage with the first error, so a read or gunzip
  // error ends the loop below by throwing instead of leaving it waiting.
  const ignore = () => {};
  if (options.gunzip) {
    pipeline(
      input,
      createGunzip(),
      createDecodeStream(encoding),
      parser,
      ignore,
    );
  } else {
    pipeline(input, createDecodeStream(encoding), parser, ignore);
  }

  let header: string[] | undefined;
  let textIndex = -1;
  let idIndex = -1;
  let lastLine = 0;
  let index = 0;
  for await (const record of parser as AsyncIterable<string[]>) {
    for (const reject of skipped.splice(0)) {
      yield { type: 'reject', reject: { ...reject } };
      index++;
    }
    // csv-parse counts a quoted CRLF as two lines, so count them here.
    const line = lastLine + 1;
    lastLine =
      line + record.reduce((n, field) => n + countLineBreaks(field), 0);
    if (record.length === 1 && record[0] === '') continue;
    if (!header) {
      header = record.map((h) => h.trim());
      textIndex = header.indexOf(textColumn);
      idIndex = header.indexOf(idColumn);
      if (textIndex < 0) {
        throw new InputError(
          `${file}: no column "${textColumn}" in the header; columns are ${header.join(', ')}. Set --text-column`,
        );
      }
      if (idIndex < 0 && options.idColumnExplicit) {
        throw new InputError(
          `${file}: no column "${idColumn}" in the header; columns are ${header.join(', ')}. Set --id-column`,
        );
      }
      continue;
    }
    const event = checkRow(
      file,
      line,
      index,
      record,
      header.length,
      idIndex,
      textIndex,
      textColumn,
    );
    index++;
    yield event;
  }
  for (const reject of skipped.splice(0)) {
    yield { type: 'reject', reject };
  }
  if (!header)
    throw new InputError(`${file}: the file is empty; expected a header row`);
}

/**
 * Checks that an input path is not a directory, so a command can fail
 * before it starts any work. A missing file passes; opening it reports that.
 *
 * @throws InputError when the path is a directory
 */
export function checkNotDirectory(file: string): void {
  let isDirectory = false;
  try {
    isDirectory = statSync(file).isDirectory();
  } catch {
    return;
  }
  if (isDirectory) {
    throw new InputError(`${file}: is a directory, expected a CSV file`);
  }
}

function countLineBreaks(field: string): number {
  return field.match(/\r\n|\r|\n/g)?.length ?? 0;
}

function checkRow(
  file: string,
  line: number,
  index: number,
  record: string[],
  width: number,
  idIndex: number,
  textIndex: number,
  textColumn: string,
): SourceEvent {
  const rawId =
    idIndex >= 0 ? (record[idIndex] ?? '').trim() : String(index + 1);
  const id = rawId && !rawId.includes(INVALID_BYTES) ? rawId : undefined;
  const reject = (reason: string): SourceEvent => ({
    type: 'reject',
    reject: { file, line, ...(id !== undefined ? { id } : {}), reason },
  });

  if (record.length !== width) {
    return reject(
      `expected ${width} fields as in the header, got ${record.length}`,
    );
  }
  if (rawId.includes(INVALID_BYTES))
    return reject('invalid bytes for the file encoding in the id');
  if (!id) return reject('missing id');
  const text = record[textIndex];
  if (text.includes(INVALID_BYTES)) {
    return reject(
      `invalid bytes for the file encoding in column "${textColumn}"`,
    );
  }
  if (text.includes('\u0000'))
    return reject(`NUL byte in column "${textColumn}"`);
  if (text.trim().length === 0)
    return reject(`missing text in column "${textColumn}"`);
  return { type: 'document', document: { id, text, line, index } };
}

async function sniffEncoding(
  file: string,
  encoding: string,
  gunzip: boolean,
): Promise<void> {
  const head = gunzip ? await readGzipHead(file) : await readHead(file);
  // Invalid UTF-8 decodes to INVALID_BYTES; other decoders give U+FFFD.
  const utf8 = /^utf-?8$/i.test(encoding);
  const utf16Bom =
    head.length >= 2 &&
    ((head[0] === 0xff && head[1] === 0xfe) ||
      (head[0] === 0xfe && head[1] === 0xff));
  if (utf8 && utf16Bom) {
    const name = head[0] === 0xff ? 'utf-16le' : 'utf-16be';
    throw new InputError(
      `${file} starts with a UTF-16 byte order mark; pass --encoding ${name}`,
    );
  }
  const text = utf8 ? decodeUtf8Lenient(head) : iconv.decode(head, encoding);
  const marker = utf8 ? INVALID_BYTES : '\ufffd';
  // The last character may be cut by the 64 KiB boundary.
  const body = text.slice(0, -1);
  const bad = [...body].filter((c) => c === marker).length;
  const total = Math.max(1, [...body].length);
  // A few bad rows in a small file are rejected row by row instead.
  if (bad >= MIN_INVALID_CHARS && bad / total > MAX_INVALID_SHARE) {
    throw new InputError(
      `${file} does not look like ${encoding}: ${bad} of the first ${total} characters are invalid. ` +
        'Pass --encoding with the encoding the file was saved in (gb18030 for most Excel exports in China)',
    );
  }
}

/** Reads the first SNIFF_BYTES bytes of a file. */
async function readHead(file: string): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new InputError(
      `cannot open input file ${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    const buf = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buf, 0, SNIFF_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Decompresses up to the first SNIFF_BYTES bytes of a gzip file. */
async function readGzipHead(file: string): Promise<Buffer> {
  const gunzip = pipeline(createReadStream(file), createGunzip(), () => {});
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      parts.push(chunk);
      size += chunk.length;
      if (size >= SNIFF_BYTES) break;
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const what = code.startsWith('Z_')
      ? `${file} is not a valid gzip file`
      : `cannot open input file ${file}`;
    throw new InputError(`${what}: ${(err as Error).message}`, { cause: err });
  }
  return Buffer.concat(parts).subarray(0, SNIFF_BYTES);
}

/**
 * Returns the delimiter character for a `--delimiter` value.
 *
 * @throws RangeError for anything but one character or `tab`
 */
export function parseDelimiter(value: string): string {
  if (value === 'tab' || value === '\\t') return '\t';
  if ([...value].length !== 1 || value === '"' || /[\r\n]/.test(value)) {
    throw new RangeError(
      `--delimiter: expected one character other than a quote or line break, or "tab", got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
