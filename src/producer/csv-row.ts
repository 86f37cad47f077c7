import type { HeaderColumns } from './csv-header.js';
import type { SourceEvent } from './csv-source.js';
import { INVALID_BYTES } from './decode-stream.js';

/** A CSV record after the header, as csv-parse returned it. */
export interface CsvRow {
  fields: string[];
  /** 1-based line where the row starts. */
  line: number;
  /** 0-based position among the file's accepted and rejected rows. */
  index: number;
  /**
   * 0-based position of the first field whose closing quote is followed by
   * other text, or -1.
   */
  badQuoteField: number;
}

/**
 * Returns a row as a document, or as a reject that names its first problem.
 * The problems are a malformed quote, a wrong number of fields, and an id
 * or text that is missing or contains invalid bytes or a NUL byte.
 */
export function checkRow(
  file: string,
  row: CsvRow,
  header: HeaderColumns,
): SourceEvent {
  const { fields, line, index, badQuoteField } = row;
  const { names, idIndex, textIndex } = header;
  const rawId = idIndex >= 0 ? fields[idIndex] : String(index + 1);
  const idHasBadQuote = idIndex >= 0 && badQuoteField === idIndex;
  const id = idHasBadQuote ? undefined : usableId(rawId);
  const reject = (reason: string): SourceEvent => ({
    type: 'reject',
    reject: { file, line, ...(id !== undefined ? { id } : {}), reason },
  });

  if (badQuoteField >= 0) {
    return reject(
      `malformed CSV: the quoted field in ${columnName(names, badQuoteField)} has text after its closing quote; ` +
        'enclose the whole field in quotes and double each quote inside it',
    );
  }
  if (fields.length !== names.length) {
    return reject(
      `expected ${names.length} fields as in the header, got ${fields.length}`,
    );
  }
  const idProblem = idIndex >= 0 ? fieldProblem(rawId, 'id') : undefined;
  if (idProblem) return reject(`${idProblem} in ${columnName(names, idIndex)}`);
  const textProblem = fieldProblem(fields[textIndex], 'text');
  if (textProblem) {
    return reject(`${textProblem} in ${columnName(names, textIndex)}`);
  }
  return {
    type: 'document',
    document: { id: rawId.trim(), text: fields[textIndex], line, index },
  };
}

/**
 * Returns an id field trimmed, or undefined when it cannot name the row in
 * a reject because it is missing, empty or has invalid bytes or a NUL byte.
 */
export function usableId(field: string | undefined): string | undefined {
  const id = field?.trim();
  if (!id || fieldProblem(id, 'id') !== undefined) return undefined;
  return id;
}

function fieldProblem(value: string, name: string): string | undefined {
  if (value.includes(INVALID_BYTES)) {
    return 'invalid bytes for the file encoding';
  }
  if (value.includes('\u0000')) return 'NUL byte';
  if (value.trim() === '') return `missing ${name}`;
  return undefined;
}

/** Names a column by its header name, or by its number when it has none. */
function columnName(names: string[], index: number): string {
  const name = names[index];
  return name ? `column "${name}"` : `column ${index + 1}`;
}
