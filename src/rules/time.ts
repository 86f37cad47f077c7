import { simplifyText } from '../tokenizer/traditional.js';
import type { RulePlugin, RuleSpan } from './plugin.js';
import {
  DATE_RULES,
  ERA_RULES,
  TIME_RULES,
  YEAR_RULES,
  type Piece,
  type Rule,
} from './time-rules.js';
import { toIsoValue, type Fields } from './time-value.js';

const LABEL = '时间';

interface CompiledRule extends Rule {
  /** Copy of the pattern that matches only at `lastIndex`. */
  sticky: RegExp;
  /** Copy of the pattern that searches forward from `lastIndex`. */
  scan: RegExp;
}

const RULES: CompiledRule[] = [
  ...YEAR_RULES,
  ...ERA_RULES,
  ...DATE_RULES,
  ...TIME_RULES,
].map((rule) => ({
  ...rule,
  sticky: new RegExp(rule.pattern, 'uy'),
  scan: new RegExp(rule.pattern, 'gu'),
}));

/** Returns the longest piece that starts at `index` and may follow `prev`. */
function matchPiece(
  text: string,
  index: number,
  prev: Piece | undefined,
): { piece: Piece; end: number } | undefined {
  let best: { piece: Piece; end: number } | undefined;
  for (const rule of RULES) {
    rule.sticky.lastIndex = index;
    const match = rule.sticky.exec(text);
    if (match === null) continue;

    const found = rule.parse(match, prev);
    if (found === null) continue;
    if (prev !== undefined && found.rank <= prev.rank) continue;

    const end = index + match[0].length;
    if (best === undefined || end > best.end) best = { piece: found, end };
  }
  return best;
}

/** Chains pieces from `start` into one maximal expression. */
function matchExpression(
  text: string,
  start: number,
): { end: number; fields: Fields } | undefined {
  const fields: Fields = {};
  let prev: Piece | undefined;
  let end = start;
  for (;;) {
    const next = matchPiece(text, end, prev);
    if (next === undefined) break;
    for (const [key, value] of Object.entries(next.piece.fields)) {
      if (value !== undefined) Object.assign(fields, { [key]: value });
    }
    prev = next.piece;
    end = next.end;
  }
  return prev === undefined ? undefined : { end, fields };
}

/** Counts code points in `text` between two UTF-16 indices. */
function countCodePoints(text: string, from: number, to: number): number {
  let count = 0;
  for (let i = from; i < to; i++) {
    // Low surrogates continue a code point that was already counted.
    if ((text.charCodeAt(i) & 0xfc00) !== 0xdc00) count++;
  }
  return count;
}

/**
 * Returns the smallest UTF-16 index >= `from` where any rule matches.
 * `cache` keeps each rule's last scan result, so each rule scans the text
 * about once.
 */
function nextCandidate(text: string, from: number, cache: number[]): number {
  let next = Infinity;
  RULES.forEach((rule, i) => {
    if (cache[i] < from) {
      rule.scan.lastIndex = from;
      cache[i] = rule.scan.exec(text)?.index ?? Infinity;
    }
    next = Math.min(next, cache[i]);
  });
  return next;
}

/**
 * Finds time expressions (时间) as People's Daily 1998 tags them `t`: dates,
 * centuries, decades, festivals, relative words and clock times, each
 * maximal expression as one span, such as 1998年3月5日上午9点.
 *
 * @param original - the document text
 * @returns spans in text order, in code-point offsets with the end
 * exclusive. A span has a `value` only when the text alone fixes it: an
 * ISO 8601 year, month, date, date and time, decade or century, as
 * {@link toIsoValue} describes.
 * @example
 * findTimes('他1998年3月5日到京');
 * // [{ label: '时间', start: 1, end: 10, value: '1998-03-05' }]
 */
export function findTimes(original: string): RuleSpan[] {
  // Traditional forms such as 點 and 節 match as their simplified ones; the
  // mapping keeps every index, so the spans fit the original text.
  const text = simplifyText(original);
  const spans: RuleSpan[] = [];
  const cache = RULES.map(() => -1);
  let index = 0;
  let offset = 0;

  while (index < text.length) {
    const start = nextCandidate(text, index, cache);
    if (start === Infinity) break;
    offset += countCodePoints(text, index, start);

    const expression = matchExpression(text, start);
    if (expression === undefined) {
      // Every pattern starts with a BMP character, so one unit is one code
      // point.
      index = start + 1;
      offset += 1;
      continue;
    }

    const length = countCodePoints(text, start, expression.end);
    const span: RuleSpan = {
      label: LABEL,
      start: offset,
      end: offset + length,
    };
    const value = toIsoValue(expression.fields);
    if (value !== undefined) span.value = value;
    spans.push(span);
    index = expression.end;
    offset += length;
  }
  return spans;
}

/** Rule plugin that labels time expressions 时间 with {@link findTimes}. */
export const timePlugin: RulePlugin = {
  name: 'time',
  labels: [LABEL],
  find: findTimes,
};
