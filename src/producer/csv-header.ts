import { isUtf8 } from 'node:buffer';

import iconv from 'iconv-lite';

import { InputError } from '../errors/errors.js';
import { INVALID_BYTES } from './decode-stream.js';
import { inputName } from './open-input.js';
import { gb18030Note } from './sniff-encoding.js';

/** Names of a header row's columns and positions of the id and text columns. */
export interface HeaderColumns {
  /** Trimmed column names. Every row must have this many fields. */
  names: string[];
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
  /** Encoding the file is read in, as `--encoding` names it. */
  encoding: string;
  /**
   * Whether the input starts with the byte order mark of its encoding,
   * which settles the encoding.
   */
  hasByteOrderMark: boolean;
}

/**
 * Finds the id and text columns in a header row. A column whose name
 * differs from the one looked for only in case or surrounding whitespace
 * is taken when no name matches exactly, so `ID` is the id column.
 *
 * @throws InputError when the text column, or an explicit id column, is
 *   missing, when either name occurs more than once, or when several names
 *   match it apart from case
 */
export function readHeader(
  file: string,
  record: string[],
  options: HeaderOptions,
): HeaderColumns {
  const names = record.map((h) => h.trim());
  const { textColumn, idColumn } = options;
  const textIndex = findColumn(file, names, textColumn, '--text-column');
  if (textIndex < 0) {
    throw missingColumn(file, names, textColumn, '--text-column', options);
  }
  const idIndex = findColumn(file, names, idColumn, '--id-column');
  if (idIndex < 0 && options.idColumnExplicit) {
    throw missingColumn(file, names, idColumn, '--id-column', options);
  }
  return { names, textIndex, idIndex };
}

/**
 * Returns the position of the column named `column`, or of the one column
 * whose name matches it apart from case and surrounding whitespace, or -1.
 *
 * @throws InputError when two columns have the name, or when no column has
 *   it and several match it apart from case
 */
function findColumn(
  file: string,
  names: string[],
  column: string,
  option: string,
): number {
  const exact = positionsOf(names, (name) => name === column);
  if (exact.length > 1) {
    throw new InputError(
      `${inputName(file)}: the header has ${exact.length} columns named "${column}" (columns ${exact.map((i) => i + 1).join(', ')}), so it is unclear which one to read. ` +
        `Rename all but one of them, or set ${option} to another column`,
    );
  }
  if (exact.length === 1) return exact[0];

  const folded = column.trim().toLowerCase();
  const loose = positionsOf(names, (name) => name.toLowerCase() === folded);
  if (loose.length > 1) {
    const found = loose.map((i) => `"${names[i]}" (column ${i + 1})`);
    throw new InputError(
      `${inputName(file)}: the header has no column "${column}", but ${loose.length} columns match it when case is ignored: ${found.join(', ')}, so it is unclear which one to read. ` +
        `Set ${option} to the exact name of one of them`,
    );
  }
  return loose.length === 1 ? loose[0] : -1;
}

function positionsOf(
  names: string[],
  matches: (name: string) => boolean,
): number[] {
  return names.flatMap((name, i) => (matches(name) ? [i] : []));
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
  const garbled = encodingProblem(header, options);
  if (garbled) return new InputError(`${problem}. ${garbled}`);
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

// Characters of a column name that a message shows. A file read in the
// wrong encoding can have no line break, and then the header is all of it.
const MAX_SHOWN_CHARACTERS = 40;

/**
 * Returns a column name for a message: shortened, with invalid bytes shown
 * as U+FFFD, and quoted with escapes when it has control characters.
 */
function showColumn(name: string): string {
  const points = [...name.replaceAll(INVALID_BYTES, '\ufffd')];
  const preview =
    points.length > MAX_SHOWN_CHARACTERS
      ? `${points.slice(0, MAX_SHOWN_CHARACTERS).join('')}…`
      : points.join('');
  // A raw tab, NUL byte or C1 control in a terminal hides what the header
  // contains. JSON escapes all but the C1 controls.
  if (!/[\u0000-\u001f\u007f-\u009f]/.test(preview)) return preview;
  return JSON.stringify(preview).replace(
    /[\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * Returns a hint when the header looks decoded in the wrong encoding, or
 * undefined. Bytes invalid in the encoding, and C1 controls, which no
 * header name contains, point at some wrong encoding. Bytes that give other
 * text when read as UTF-8 point at UTF-8, as when a UTF-8 file is read as
 * latin1 (编号 becomes ç¼\u0096å\u008f·), gbk or utf-16le. Bytes that give
 * Chinese text when read as GB18030 point at that encoding, the one of most
 * Excel exports in China. Neither hint is given when the input starts with
 * the byte order mark of its encoding, or when the header's bytes contain
 * NUL bytes, as UTF-16 text does.
 */
function encodingProblem(
  header: string[],
  options: HeaderOptions,
): string | undefined {
  const { encoding } = options;
  const text = header.join(',');
  const invalid = text.includes(INVALID_BYTES) || text.includes('\ufffd');
  if (!/^utf-?8$/i.test(encoding) && !options.hasByteOrderMark) {
    // Invalid characters are left out, because they encode to no byte.
    const readable = text
      .replaceAll(INVALID_BYTES, '')
      .replaceAll('\ufffd', '');
    const bytes = iconv.encode(readable, encoding);
    // NUL is valid UTF-8, but no UTF-8 or GB18030 header contains it.
    // UTF-16 has one in every ASCII character, so the header is UTF-16.
    const utf16 = bytes.includes(0);
    if (!utf16 && isUtf8(bytes) && bytes.toString('utf8') !== readable) {
      return `The header looks like UTF-8 text read as ${encoding}: pass --encoding utf-8`;
    }
    // NOTE: accented Latin-1 letters next to each other can also decode as
    // Han characters, so a real Latin-1 header may get this hint wrongly.
    if (!utf16 && !/^(gbk|gb2312|gb18030|cp936)$/i.test(encoding)) {
      const gb = iconv.decode(bytes, 'gb18030');
      if (
        !gb.includes('\ufffd') &&
        /\p{Script=Han}/u.test(gb) &&
        gb !== readable
      ) {
        return `The header looks like GB18030 (GBK) text read as ${encoding}: pass --encoding gb18030`;
      }
    }
  }
  if (invalid || /[\u0080-\u009f]/.test(text)) {
    return (
      `The header has invalid bytes or control characters when read as ${encoding}, so the encoding may be wrong: ` +
      `pass --encoding with the encoding the file was saved in${gb18030Note(encoding)}`
    );
  }
  return undefined;
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
