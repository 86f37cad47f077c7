import type { InputError } from '../errors/errors.js';
import {
  lineError,
  mapTags,
  type Line,
  type TaggedSpan,
} from './gold-lines.js';
import type { GoldSentence } from './gold-readers.js';

/**
 * Reads CLUENER JSON lines. Every position is checked against its surface,
 * so a file with exclusive ends fails at its first span.
 */
export async function* readCluener(
  file: string,
  lines: AsyncIterable<Line>,
  labels: ReadonlyMap<string, string>,
): AsyncGenerator<GoldSentence> {
  for await (const line of lines) {
    if (line.text.trim() === '') continue;
    const fail = (reason: string) => lineError(file, line.number, reason);
    let row: unknown;
    try {
      row = JSON.parse(line.text);
    } catch (err) {
      throw fail(`invalid JSON: ${(err as Error).message}`);
    }
    yield { ...cluenerSentence(row, labels, fail), line: line.number };
  }
}

function cluenerSentence(
  row: unknown,
  labels: ReadonlyMap<string, string>,
  fail: (reason: string) => InputError,
): Omit<GoldSentence, 'line'> {
  if (!isObject(row) || typeof row.text !== 'string') {
    throw fail('expected a JSON object with a string "text" field');
  }
  // Unlabelled texts, as in the CLUENER test split, have no spans.
  if (row.label === undefined || row.label === null) {
    return { text: row.text, spans: [] };
  }
  if (!isObject(row.label)) {
    throw fail(
      `"label": expected an object {type: {surface: [[start, end]]}}, ` +
        `got ${JSON.stringify(row.label)}`,
    );
  }

  const chars = [...row.text];
  const tagged: TaggedSpan[] = [];
  for (const [type, surfaces] of Object.entries(row.label)) {
    if (!isObject(surfaces)) {
      throw fail(
        `"label.${type}": expected an object {surface: [[start, end]]}, ` +
          `got ${JSON.stringify(surfaces)}`,
      );
    }
    for (const [surface, positions] of Object.entries(surfaces)) {
      if (!Array.isArray(positions)) {
        throw fail(
          `label ${type} "${surface}": expected a list of [start, end] ` +
            `pairs, got ${JSON.stringify(positions)}`,
        );
      }
      for (const position of positions) {
        const problem = positionProblem(position, surface, chars);
        if (problem) throw fail(`label ${type} "${surface}": ${problem}`);
        const [start, last] = position as [number, number];
        tagged.push({ start, end: last + 1, tag: type });
      }
    }
  }
  tagged.sort((a, b) => a.start - b.start || a.end - b.end);
  return { text: row.text, spans: mapTags(tagged, labels) };
}

/** Describes what is wrong with a CLUENER position, or returns undefined. */
function positionProblem(
  position: unknown,
  surface: string,
  chars: string[],
): string | undefined {
  const valid =
    Array.isArray(position) &&
    position.length === 2 &&
    position.every(Number.isInteger) &&
    0 <= position[0] &&
    position[0] <= position[1] &&
    position[1] < chars.length;
  if (!valid) {
    return (
      `expected [start, end] with 0 <= start <= end < ${chars.length} ` +
      `(0-based, end inclusive), got ${JSON.stringify(position)}`
    );
  }
  const [start, last] = position as [number, number];
  const covered = chars.slice(start, last + 1).join('');
  if (covered !== surface) {
    return (
      `position ${JSON.stringify(position)} covers "${covered}" in the ` +
      `text; CLUENER positions are 0-based with the end inclusive`
    );
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
