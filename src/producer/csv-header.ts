import { InputError } from '../errors/errors.js';
import { inputName } from './open-input.js';

/** Positions of the id and text columns in a header row. */
export interface HeaderColumns {
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
export function readHeader(
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
