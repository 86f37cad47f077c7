import { pipeline } from 'node:stream';

import { parse, type CsvError } from 'csv-parse';
import type { Logger } from 'pino';

import { InputError } from '../errors/errors.js';
import {
  parseDelimiter,
  readHeader,
  type HeaderColumns,
} from './csv-header.js';
import { checkRow, usableId } from './csv-row.js';
import { CsvScanner } from './csv-scanner.js';
import { createDecodeStream, isSupportedEncoding } from './decode-stream.js';
import { checkInput, inputName, openInput, STDIN } from './open-input.js';
import { findByteOrderMark, sniffEncoding } from './sniff-encoding.js';

export { checkInput, inputName, STDIN } from './open-input.js';

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
  /**
   * Logger for warnings about the file as a whole, such as a header
   * without id column. Without it, such warnings are not shown.
   */
  log?: Logger;
}

/** A malformed row, before its id is looked up in the header. */
interface SkippedRow extends RejectedRow {
  /** Fields of the row that were complete before it broke. */
  fields?: string[];
}

/** Start line of a CSV record and the malformed rows skipped before it. */
interface RecordPosition {
  /** 1-based line where the record starts. */
  line: number;
  skippedBefore: SkippedRow[];
  /** Field whose closing quote is followed by other text, or -1. */
  badQuoteField: number;
}

/**
 * Streams documents and rejected rows from a CSV file with a header row,
 * or from standard input for `-`. Handles a byte order mark, quoted
 * newlines and CRLF line ends. Each byte is read once, so a pipe works.
 *
 * @throws InputError when the file is missing, the header lacks the text
 *   column, has two columns of the id or text column's name, or is not
 *   valid CSV, or the bytes are clearly not in the given encoding
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
  const hasByteOrderMark = findByteOrderMark(opened.head) !== undefined;
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
  let records = 0;
  let skipped: SkippedRow[] = [];
  const positions: RecordPosition[] = [];
  // csv-parse reads what the scanner has passed on, so the scanner has seen
  // every byte of a record when csv-parse returns it.
  const scanner = new CsvScanner(delimiter);
  const parser = parse({
    bom: true,
    delimiter,
    // csv-parse otherwise takes the line end of the first row for the whole
    // file, and rows with another line end are glued into one record.
    record_delimiter: ['\r\n', '\n', '\r'],
    relax_column_count: true,
    // A quote inside an unquoted field is kept as a character. The scanner
    // finds the closing quotes followed by text that this also lets pass.
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
      const badQuoteField = scanner.takeBadQuote(records++);
      positions.push({ line, skippedBefore: skipped, badQuoteField });
      skipped = [];
      return fields;
    },
    on_skip: (err: CsvError | undefined) => {
      const line = parsedLines + 1;
      // An unclosed quote is reported at the end of the input, so the
      // scanner has counted every line.
      skipped.push({
        file,
        line,
        reason:
          err?.code === 'CSV_QUOTE_NOT_CLOSED'
            ? `malformed CSV: a quote opened in this row is never closed, so the rest of the file (to line ${scanner.lines}) was read as one field and lost; fix the quote and run again`
            : `malformed CSV: ${withoutLineNumber(err?.message ?? 'unreadable row')}`,
        fields: fieldsSoFar(parser),
      });
      // NOTE: after an error other than an unclosed quote, csv-parse reads
      // the rest of the row without calling on_record, so a row that goes
      // on past its first line shifts the lines of later rows. No such
      // error occurs with the options above.
      parsedLines = line;
      // The scanner counts this record too.
      records++;
      return undefined;
    },
  });
  // pipeline destroys every stage with the first error, so a read or gunzip
  // error ends the loop below by throwing instead of leaving it waiting.
  pipeline(
    input,
    createDecodeStream(encoding),
    scanner.createStream(),
    parser,
    () => {},
  );

  let header: HeaderColumns | undefined;
  // The first malformed row read before any header, which explains a file
  // that yields no header.
  let brokenHeader: SkippedRow | undefined;
  let index = 0;
  for await (const record of parser as AsyncIterable<string[]>) {
    // on_record ran for this record and every one before it.
    const { line, skippedBefore, badQuoteField } = positions.shift()!;
    for (const row of skippedBefore) {
      if (!header) brokenHeader ??= row;
      yield { type: 'reject', reject: skippedReject(row, header, index) };
      index++;
    }
    if (record.length === 1 && record[0] === '') continue;
    if (!header) {
      header = readHeaderRow(file, record, line, badQuoteField, {
        textColumn,
        idColumn,
        idColumnExplicit: options.idColumnExplicit ?? false,
        delimiter,
        encoding,
        hasByteOrderMark,
      });
      if (header.idIndex < 0) {
        options.log?.warn(
          { file: inputName(file), idColumn, columns: header.names },
          "no id column in the header; each row's number is its id",
        );
      }
      continue;
    }
    const event = checkRow(
      file,
      { fields: record, line, index, badQuoteField },
      header,
    );
    index++;
    yield event;
  }
  // The parser has ended, so these are the rows after the last record.
  for (const row of skipped) {
    if (!header) brokenHeader ??= row;
    yield { type: 'reject', reject: skippedReject(row, header, index) };
    index++;
  }
  if (!header && brokenHeader) {
    throw new InputError(
      `${file === STDIN ? 'standard input' : file}: no header row could be read, because line ${brokenHeader.line} is not valid CSV: ${brokenHeader.reason}`,
    );
  }
  if (!header) {
    throw new InputError(
      file === STDIN
        ? 'standard input is empty; expected a header row'
        : `${file}: the file is empty; expected a header row`,
    );
  }
}

/**
 * Reads the header row with {@link readHeader}.
 *
 * @throws InputError also when a quoted name has text after its closing
 *   quote
 */
function readHeaderRow(
  file: string,
  record: string[],
  line: number,
  badQuoteField: number,
  options: Parameters<typeof readHeader>[2],
): HeaderColumns {
  if (badQuoteField >= 0) {
    throw new InputError(
      `${inputName(file)}: no header row could be read, because line ${line} is not valid CSV: ` +
        `the quoted name of column ${badQuoteField + 1} has text after its closing quote; enclose the whole name in quotes and double each quote inside it`,
    );
  }
  return readHeader(file, record, options);
}

/**
 * Returns a copy of the fields that csv-parse completed in the record it is
 * parsing, or undefined when this csv-parse has no such state. Its errors
 * carry only the number of those fields. csv-parse 7 keeps them in
 * `state.record`, which it sets on the stream for backward compatibility.
 */
function fieldsSoFar(parser: object): string[] | undefined {
  const record = (parser as { state?: { record?: unknown } }).state?.record;
  if (!Array.isArray(record)) return undefined;
  return record.every((f) => typeof f === 'string') ? [...record] : undefined;
}

/**
 * Returns a malformed row's reject with the id read from the fields before
 * the break, or with the reason the id is unknown added to its reason.
 *
 * @param index - 0-based position of the row, for files numbered by row
 */
function skippedReject(
  row: SkippedRow,
  header: HeaderColumns | undefined,
  index: number,
): RejectedRow {
  const { file, line, reason, fields } = row;
  // A row before the header has no id column to read.
  if (!header) return { file, line, reason };
  if (header.idIndex < 0) return { file, line, id: String(index + 1), reason };
  const rawId = fields?.[header.idIndex];
  const id = usableId(rawId);
  if (id !== undefined) return { file, line, id, reason };
  const unknownBecause =
    fields === undefined
      ? 'the CSV parser does not report the fields of a malformed row'
      : rawId === undefined
        ? `the row breaks in or before the id column (column ${header.idIndex + 1})`
        : 'the id column of the row is empty or has invalid bytes or a NUL byte';
  return {
    file,
    line,
    reason: `${reason}. The id is unknown: ${unknownBecause}`,
  };
}

function countLineBreaks(field: string): number {
  // Most fields have no line break, and the test costs no array.
  if (!LINE_BREAK.test(field)) return 0;
  return field.match(/\r\n|\r|\n/g)?.length ?? 0;
}

const LINE_BREAK = /[\r\n]/;

/**
 * Removes the line number from a csv-parse error message, because
 * csv-parse counts a quoted CRLF as two lines. The reject gives the line.
 */
function withoutLineNumber(message: string): string {
  return message.replace(/ (at|on) line \d+/, '');
}
