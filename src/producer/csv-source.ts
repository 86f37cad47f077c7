import { createReadStream, statSync, type ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { parse, type CsvError } from 'csv-parse';
import iconv from 'iconv-lite';

import { InputError } from '../errors/errors.js';
import { countCodePoints } from '../tokenizer/tokenizer.js';
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
   * Whether the input is gzip-compressed and is decompressed while read.
   * When unset, the input is decompressed when it starts with the gzip
   * magic bytes.
   */
  gunzip?: boolean;
  /**
   * Called with the share of the file read so far, from 0 to 1. Never
   * called for standard input, a pipe or a device, whose size is unknown.
   */
  onProgress?: (fraction: number) => void;
}

/** Start line of a CSV record and the malformed rows skipped before it. */
interface RecordPosition {
  /** 1-based line where the record starts. */
  line: number;
  skippedBefore: RejectedRow[];
}

const SNIFF_BYTES = 64 * 1024;
// Share of invalid characters in the first 64 KiB above which the file is
// taken to be in another encoding rather than to contain a few bad rows.
const MAX_INVALID_SHARE = 0.02;
const MIN_INVALID_CHARS = 8;

/**
 * Streams documents and rejected rows from a CSV file with a header row,
 * or from standard input for `-`. Handles a byte order mark, quoted
 * newlines and CRLF line ends. Each byte is read once, so a pipe works.
 *
 * @throws InputError when the file is missing, the header lacks the text
 *   column or has two columns of the id or text column's name, or the
 *   bytes are clearly not in the given encoding
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
  checkInput(file);
  const opened = await openInput(file, options.gunzip);
  try {
    sniffEncoding(file, opened.head, encoding);
  } catch (err) {
    opened.close();
    throw err;
  }

  const { bytes: input, readShare } = opened;
  // A pipe has no size, so its progress has no fraction.
  if (options.onProgress && readShare) {
    const report = options.onProgress;
    input.on('data', () => report(readShare()));
  }
  // csv-parse may run ahead of the loop below by many records, or finish
  // before the loop reads the first one. So lines are counted, and skipped
  // rows attached to the next record, while csv-parse reads.
  let parsedLines = 0;
  let skipped: RejectedRow[] = [];
  const positions: RecordPosition[] = [];
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
    on_record: (fields: string[]) => {
      // csv-parse counts a quoted CRLF as two lines, so count them here.
      const line = parsedLines + 1;
      parsedLines =
        line + fields.reduce((n, field) => n + countLineBreaks(field), 0);
      positions.push({ line, skippedBefore: skipped });
      skipped = [];
      return fields;
    },
    on_skip: (err: CsvError | undefined) => {
      const end = Number(err?.lines ?? parsedLines + 1);
      const unclosed = err?.code === 'CSV_QUOTE_NOT_CLOSED';
      // An unclosed quote swallows the rest of the file, so report where the
      // row starts, not where parsing ended.
      skipped.push({
        file,
        line: unclosed ? parsedLines + 1 : end,
        reason: unclosed
          ? `malformed CSV: a quote opened in this row is never closed, so the rest of the file (to line ${end}) was read as one field and lost; fix the quote and run again`
          : `malformed CSV: ${err?.message ?? 'unreadable row'}`,
      });
      parsedLines = Math.max(parsedLines, end);
      return undefined;
    },
  });
  // pipeline destroys every stage with the first error, so a read or gunzip
  // error ends the loop below by throwing instead of leaving it waiting.
  pipeline(input, createDecodeStream(encoding), parser, () => {});

  let header: HeaderColumns | undefined;
  let index = 0;
  for await (const record of parser as AsyncIterable<string[]>) {
    // on_record ran for this record and every one before it.
    const { line, skippedBefore } = positions.shift()!;
    for (const reject of skippedBefore) {
      yield { type: 'reject', reject };
      index++;
    }
    if (record.length === 1 && record[0] === '') continue;
    if (!header) {
      header = readHeader(file, record, {
        textColumn,
        idColumn,
        idColumnExplicit: options.idColumnExplicit ?? false,
        delimiter,
      });
      continue;
    }
    const event = checkRow(
      file,
      line,
      index,
      record,
      header.width,
      header.idIndex,
      header.textIndex,
      textColumn,
    );
    index++;
    yield event;
  }
  // The parser has ended, so these are the rows after the last record.
  for (const reject of skipped) {
    yield { type: 'reject', reject };
  }
  if (!header) {
    throw new InputError(
      file === STDIN
        ? 'standard input is empty; expected a header row'
        : `${file}: the file is empty; expected a header row`,
    );
  }
}

/** Input path that means standard input, as in most Unix tools. */
export const STDIN = '-';

// Names of this process's standard input. Linux cannot open them again when
// standard input is a socket, as Node makes it for a piped child, so they
// are read through the descriptor instead.
const STDIN_PATHS = new Set(['/dev/stdin', '/dev/fd/0', '/proc/self/fd/0']);

/** Returns how messages name an input: `-` is standard input. */
export function inputName(file: string): string {
  return file === STDIN ? 'standard input' : file;
}

/**
 * Checks an input path before a command starts any work: it must not be a
 * directory, and standard input must not be a terminal, where reading would
 * wait for typed rows. A missing file passes; opening it reports that.
 *
 * @throws InputError when the path is a directory or a terminal
 */
export function checkInput(file: string): void {
  if (isStandardInput(file) && process.stdin.isTTY) {
    throw new InputError(
      `${inputName(file)} is a terminal, not a CSV; pipe a CSV in (cat corpus.csv | uie-batch ...) or give the path of the CSV file instead of ${file}`,
    );
  }
  if (file === STDIN) return;
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

function isStandardInput(file: string): boolean {
  return file === STDIN || STDIN_PATHS.has(file);
}

/** Positions of the id and text columns in a header row. */
interface HeaderColumns {
  /** Number of columns, which is the number of fields every row must have. */
  width: number;
  textIndex: number;
  /** -1 when the header has no id column and rows are numbered instead. */
  idIndex: number;
}

interface HeaderOptions {
  textColumn: string;
  idColumn: string;
  idColumnExplicit: boolean;
  /** Field delimiter character in use. */
  delimiter: string;
}

/**
 * Finds the id and text columns in a header row.
 *
 * @throws InputError when the text column, or an explicit id column, is
 *   missing or when either name occurs more than once
 */
function readHeader(
  file: string,
  record: string[],
  options: HeaderOptions,
): HeaderColumns {
  const header = record.map((h) => h.trim());
  const { textColumn, idColumn } = options;
  const textIndex = header.indexOf(textColumn);
  const idIndex = header.indexOf(idColumn);
  if (textIndex < 0) {
    throw missingColumn(file, header, textColumn, '--text-column', options);
  }
  if (idIndex < 0 && options.idColumnExplicit) {
    throw missingColumn(file, header, idColumn, '--id-column', options);
  }
  checkUniqueColumn(file, header, textColumn, '--text-column');
  if (idIndex >= 0 && idColumn !== textColumn) {
    checkUniqueColumn(file, header, idColumn, '--id-column');
  }
  return { width: header.length, textIndex, idIndex };
}

// Delimiters that a header of one column may contain, as --delimiter takes
// them. Checked in this order.
const OTHER_DELIMITERS: [string, string][] = [
  ['\t', 'tab'],
  [';', "';'"],
  [',', ','],
];

function missingColumn(
  file: string,
  header: string[],
  column: string,
  option: string,
  options: HeaderOptions,
): InputError {
  const columns = header.map(showColumn).join(', ');
  const problem = `${inputName(file)}: no column "${column}" in the header; columns are ${columns}`;
  // A header read with the wrong delimiter comes out as one column.
  const other =
    header.length === 1
      ? OTHER_DELIMITERS.find(
          ([char]) => char !== options.delimiter && header[0].includes(char),
        )
      : undefined;
  if (!other) return new InputError(`${problem}. Set ${option}`);
  const [char, value] = other;
  const name = char === '\t' ? 'a tab' : `"${char}"`;
  return new InputError(
    `${problem}. The only column contains ${name}, so the file is probably separated by it: pass --delimiter ${value}`,
  );
}

/** Returns a column name for a message, quoted when it has control characters. */
function showColumn(name: string): string {
  // A raw tab or NUL byte in a terminal hides what the header contains.
  return /[\u0000-\u001f\u007f]/.test(name) ? JSON.stringify(name) : name;
}

function checkUniqueColumn(
  file: string,
  header: string[],
  column: string,
  option: string,
): void {
  const positions = header.flatMap((name, i) =>
    name === column ? [i + 1] : [],
  );
  if (positions.length < 2) return;
  throw new InputError(
    `${inputName(file)}: the header has ${positions.length} columns named "${column}" (columns ${positions.join(', ')}), so it is unclear which one to read. ` +
      `Rename all but one of them, or set ${option} to another column`,
  );
}

function countLineBreaks(field: string): number {
  // Most fields have no line break, and the test costs no array.
  if (!LINE_BREAK.test(field)) return 0;
  return field.match(/\r\n|\r|\n/g)?.length ?? 0;
}

const LINE_BREAK = /[\r\n]/;

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

/**
 * Throws when the first bytes of an input are clearly not in the encoding.
 *
 * @param head - up to the first SNIFF_BYTES bytes, decompressed
 */
function sniffEncoding(file: string, head: Buffer, encoding: string): void {
  // Invalid UTF-8 decodes to INVALID_BYTES; other decoders give U+FFFD.
  const utf8 = /^utf-?8$/i.test(encoding);
  const utf16Bom =
    head.length >= 2 &&
    ((head[0] === 0xff && head[1] === 0xfe) ||
      (head[0] === 0xfe && head[1] === 0xff));
  if (utf8 && utf16Bom) {
    const name = head[0] === 0xff ? 'utf-16le' : 'utf-16be';
    throw new InputError(
      `${inputName(file)} starts with a UTF-16 byte order mark; pass --encoding ${name}`,
    );
  }
  checkUtf16(file, head, encoding);
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
        'Pass --encoding with the encoding the file was saved in (gb18030 for most Excel exports in China)',
    );
  }
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
  const requested = encoding.toLowerCase().replace(/[^a-z0-9]/g, '');
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

/** An input opened for reading once, from its first byte. */
interface OpenedInput {
  /** All bytes of the input, decompressed, the head included. */
  bytes: Readable;
  /** Up to the first SNIFF_BYTES bytes of `bytes`. */
  head: Buffer;
  /** Share of a regular file read so far, from 0 to 1. Unset for a pipe. */
  readShare?: () => number;
  /** Stops reading, for a caller that does not read `bytes` to the end. */
  close: () => void;
}

/**
 * Opens an input once. A pipe cannot be read twice, so the head that the
 * encoding check needs is taken from the same stream and then read again
 * from memory. Unless gunzip is set either way, the input is decompressed
 * when it starts with the gzip magic bytes, because a pipe has no name that
 * shows its format and a file's name may not either.
 *
 * @throws InputError when the input cannot be read or is not valid gzip
 */
async function openInput(
  file: string,
  gunzip: boolean | undefined,
): Promise<OpenedInput> {
  const piped = openStream(file);
  const raw = piped ?? createReadStream(file);
  let bytes: Readable = raw;
  const close = () => {
    bytes.destroy();
    raw.destroy();
  };
  try {
    let decompress = gunzip ?? false;
    if (gunzip === undefined) {
      const start = await peek(raw, GZIP_MAGIC.length);
      decompress = start.head.equals(GZIP_MAGIC);
      bytes = start.bytes;
    }
    // pipeline destroys the gunzip stream with a read error, so reading it
    // throws that error instead of waiting for data that never comes.
    if (decompress) bytes = pipeline(bytes, createGunzip(), () => {});
    const start = await peek(bytes, SNIFF_BYTES);
    bytes = start.bytes;
    if (piped) return { bytes, head: start.head, close };
    const size = (await stat(file)).size;
    const stored = raw as ReadStream;
    const readShare = () => (size > 0 ? stored.bytesRead / size : 1);
    return { bytes, head: start.head, readShare, close };
  } catch (err) {
    close();
    throw readError(file, err);
  }
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

/**
 * Returns a stream for standard input, a pipe or a device, or undefined for
 * a regular file or a missing path, which createReadStream reports.
 */
function openStream(file: string): Readable | undefined {
  if (file === STDIN) return process.stdin;
  let regular: boolean;
  try {
    regular = statSync(file).isFile();
  } catch {
    return undefined;
  }
  if (regular) return undefined;
  return STDIN_PATHS.has(file) ? process.stdin : createReadStream(file);
}

/**
 * Reads up to the first `length` bytes of a stream and returns them with a
 * stream of all its bytes from the start, those included.
 */
async function peek(
  stream: Readable,
  length: number,
): Promise<{ head: Buffer; bytes: Readable }> {
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const parts: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size < length && !ended) {
    const next = await chunks.next();
    if (next.done) ended = true;
    else {
      parts.push(next.value);
      size += next.value.length;
    }
  }

  async function* replay(): AsyncGenerator<Buffer> {
    try {
      yield* parts.splice(0);
      if (ended) return;
      for (;;) {
        const next = await chunks.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      // Ends the stream too when the reader stops early.
      await chunks.return?.();
    }
  }
  const head = Buffer.concat(parts).subarray(0, length);
  return { head, bytes: Readable.from(replay(), { objectMode: false }) };
}

/** Wraps an error in reading or decompressing an input for its message. */
function readError(file: string, err: unknown): unknown {
  if (err instanceof InputError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const problem = code.startsWith('Z_')
    ? `${inputName(file)} is not valid gzip data`
    : file === STDIN
      ? 'cannot read standard input'
      : `cannot open input file ${file}`;
  return new InputError(`${problem}: ${(err as Error).message}`, {
    cause: err,
  });
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
