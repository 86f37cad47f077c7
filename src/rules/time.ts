import { simplifyText } from '../tokenizer/traditional.js';
import type { RulePlugin, RuleSpan } from './plugin.js';
import {
  DATE_RULES,
  ERA_RULES,
  Rank,
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

/**
 * Returns the longest piece that starts at `index` and may follow `prev`.
 *
 * @param context - for the first piece of an expression that continues
 *   another across a joiner, the last piece of that one, which lets 11点 in
 *   9点至11点 read as a clock time as it would right after 9点
 */
function matchPiece(
  text: string,
  index: number,
  prev: Piece | undefined,
  context: Piece | undefined,
): { piece: Piece; end: number } | undefined {
  let best: { piece: Piece; end: number } | undefined;
  for (const rule of RULES) {
    rule.sticky.lastIndex = index;
    const match = rule.sticky.exec(text);
    if (match === null) continue;

    const found = rule.parse(match, prev, context);
    if (found === null) continue;
    if (prev !== undefined && found.rank <= prev.rank) continue;

    const end = index + match[0].length;
    if (best === undefined || end > best.end) best = { piece: found, end };
  }
  return best;
}

/** A maximal expression: its end, its fields and the rank of its first piece. */
interface Expression {
  end: number;
  fields: Fields;
  firstRank: number;
  last: Piece;
  /** Rank of the finest field taken from the expression before it. */
  continuedRank?: number;
  /**
   * Set on a date followed by its weekday in brackets, whose end is past
   * the closing bracket: a time right there continues the date.
   */
  throughBracket?: boolean;
}

/** Rank of the piece that sets each field, as in time-rules.ts. */
const FIELD_RANKS: Record<Exclude<keyof Fields, 'unresolved'>, number> = {
  century: Rank.century,
  decadeTens: Rank.decade,
  decadeStart: Rank.decade,
  year: Rank.year,
  month: Rank.month,
  lunarMonth: Rank.month,
  lunarLeap: Rank.month,
  festival: Rank.week,
  day: Rank.day,
  lunarDay: Rank.day,
  weekday: Rank.weekday,
  period: Rank.period,
  hour: Rank.clock,
  minute: Rank.clock,
  second: Rank.clock,
};

/**
 * Characters that join the two ends of a range or a list of times, after
 * which a shorter expression continues the one before it (1998年3月5日至7日).
 */
const JOINERS = new Set([
  '至',
  '到',
  '-',
  '－',
  '—',
  '–',
  '~',
  '～',
  '、',
  '和',
  '及',
  '或',
]);

/** Joiners of the two ends of a range, as opposed to items of a list. */
const RANGE_JOINERS = new Set(['至', '到', '-', '－', '—', '–', '~', '～']);

/**
 * Completes an expression that continues the one before it: 7日 in
 * 1998年3月5日至7日 takes the year and month. Only fields coarser than the
 * expression's own first piece are taken, and an unresolved start leaves
 * the continuation unresolved too.
 */
function continueFrom(previous: Expression, next: Expression): void {
  if (next.firstRank <= previous.firstRank) return;
  for (const [key, rank] of Object.entries(FIELD_RANKS)) {
    const name = key as keyof typeof FIELD_RANKS;
    const value = previous.fields[name];
    if (rank < next.firstRank && value !== undefined) {
      Object.assign(next.fields, { [name]: value });
      next.continuedRank = Math.max(next.continuedRank ?? rank, rank);
    }
  }
  if (previous.fields.unresolved) next.fields.unresolved = true;
  // The completed expression starts where the one before it did, so the
  // third item of 5日、6日和7日 continues the second.
  next.firstRank = previous.firstRank;
}

/**
 * Chains pieces from `start` into one maximal expression.
 *
 * @param context - last piece of the expression this one may continue
 */
function matchExpression(
  text: string,
  start: number,
  context: Piece | undefined,
): Expression | undefined {
  const fields: Fields = {};
  let first: Piece | undefined;
  let prev: Piece | undefined;
  let end = start;
  for (;;) {
    const next = matchPiece(text, end, prev, prev ? undefined : context);
    if (next === undefined) break;
    for (const [key, value] of Object.entries(next.piece.fields)) {
      if (value !== undefined) Object.assign(fields, { [key]: value });
    }
    first ??= next.piece;
    prev = next.piece;
    end = next.end;
  }
  if (first === undefined || prev === undefined) return undefined;
  return { end, fields, firstRank: first.rank, last: prev };
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
 * {@link toIsoValue} describes. An expression right after 至, 到, a dash,
 * 、 or 和 that starts finer than the one before it takes that one's
 * coarser fields: 7日 in 1998年3月5日至7日 has the value 1998-03-07.
 * @example
 * findTimes('他1998年3月5日到京');
 * // [{ label: '时间', start: 1, end: 10, value: '1998-03-05' }]
 */
export function findTimes(original: string): RuleSpan[] {
  // Traditional forms such as 點 and 節 match as their simplified ones; the
  // mapping keeps every index, so the spans fit the original text.
  const text = simplifyText(original);
  const spans: RuleSpan[] = [];
  const titles = titleRanges(text);
  const cache = RULES.map(() => -1);
  let index = 0;
  let offset = 0;
  let previous: Expression | undefined;

  while (index < text.length) {
    const start = nextCandidate(text, index, cache);
    if (start === Infinity) break;
    offset += countCodePoints(text, index, start);

    const continues =
      previous !== undefined &&
      ((start === previous.end + 1 && JOINERS.has(text[previous.end])) ||
        (previous.throughBracket === true && start === previous.end));
    const expression = matchExpression(
      text,
      start,
      continues ? previous?.last : undefined,
    );
    if (expression === undefined) {
      // Every pattern starts with a BMP character, so one unit is one code
      // point.
      index = start + 1;
      offset += 1;
      continue;
    }

    const bracketed =
      previous !== undefined &&
      start === previous.end + 1 &&
      OPEN_BRACKETS.has(text[previous.end]) &&
      isWeekday(expression) &&
      CLOSE_BRACKETS.has(text[expression.end]);
    let value: string | undefined;
    if (bracketed && previous !== undefined) {
      value = checkWeekday(previous, expression, spans.at(-1), offset - 1);
    } else if (continues && previous !== undefined) {
      continueFrom(previous, expression);
      // Only the end of a range runs on past its start. A list may go back
      // in time (2024年10月1日、5月1日).
      const rangeEnd =
        start > previous.end && RANGE_JOINERS.has(text[previous.end]);
      if (rangeEnd && NEXT_DAY.has(text.slice(start, start + 2))) {
        nextDayOf(previous, expression);
      }
      value = rangeEnd
        ? rangeEndValue(previous, expression)
        : toIsoValue(expression.fields);
    } else {
      value = toIsoValue(expression.fields);
    }
    // What follows the closing bracket continues the date with its weekday:
    // 1998年3月5日（星期四）上午9点, 3月5日（星期四）至7日.
    previous =
      bracketed && previous !== undefined
        ? {
            ...previous,
            end: expression.end + 1,
            fields: { ...previous.fields, ...expression.fields },
            last: expression.last,
            throughBracket: true,
          }
        : expression;

    const length = countCodePoints(text, start, expression.end);
    const span: RuleSpan = {
      label: LABEL,
      start: offset,
      end: offset + length,
    };
    if (value !== undefined) span.value = value;
    // A relative word in a title (《明天会更好》, 《后天》) names no time of
    // the text.
    if (!(expression.fields.unresolved && inTitle(titles, start))) {
      spans.push(span);
    }
    index = expression.end;
    offset += length;
  }
  return spans;
}

const OPEN_BRACKETS = new Set(['（', '(']);
const CLOSE_BRACKETS = new Set(['）', ')']);

/** Tells whether an expression is a weekday alone: 星期四, 周五. */
function isWeekday(expression: Expression): boolean {
  const keys = Object.keys(expression.fields);
  return keys.length === 1 && keys[0] === 'weekday';
}

/**
 * Checks a weekday in brackets after a date, as in 1998年3月5日（星期四），
 * against that date, and returns the weekday's value: the date when they
 * agree. When they disagree one of the two is a typo, so the date's span,
 * the last one found, loses its value too.
 *
 * @param dateSpan - the last span found, which is the date's when it ends
 *   at `dateEnd`, the code point before the bracket
 */
function checkWeekday(
  date: Expression,
  weekday: Expression,
  dateSpan: RuleSpan | undefined,
  dateEnd: number,
): string | undefined {
  const dated = toIsoValue(date.fields);
  if (dated === undefined || dated.length < 10) return undefined;
  const both = toIsoValue({ ...date.fields, ...weekday.fields });
  if (both === undefined && dateSpan?.end === dateEnd) delete dateSpan.value;
  return both?.slice(0, 10);
}

/** UTF-16 ranges inside 《 and 》, outermost titles only. */
function titleRanges(text: string): [number, number][] {
  const ranges: [number, number][] = [];
  let depth = 0;
  let open = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '《') {
      if (depth === 0) open = i;
      depth++;
    } else if (text[i] === '》' && depth > 0) {
      depth--;
      if (depth === 0) ranges.push([open, i]);
    }
  }
  return ranges;
}

/** Returns whether a UTF-16 index lies inside one of the sorted title ranges. */
function inTitle(ranges: [number, number][], index: number): boolean {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid][0] < index) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && index < ranges[lo - 1][1];
}

/**
 * Returns the value of an expression that continues another, such as 1月3日
 * in 2024年12月30日至1月3日. An end that would fall before its start
 * belongs to the next year, month or day, whichever field it took from the
 * start, so that one is moved on: 2025-01-03 here, and 1998-03-06T02:00 for
 * 凌晨2点 in 1998年3月5日晚8点至凌晨2点.
 */
function rangeEndValue(
  previous: Expression,
  next: Expression,
): string | undefined {
  const inherited = next.continuedRank;
  // An end with its own year (1997年至1987年) took nothing from the start.
  if (inherited === undefined) return toIsoValue(next.fields);

  // An hour before dawn that took 晚 from its start (晚11点至1点) is early
  // in the morning, so the rules below move it to the next day.
  const { hour, period } = next.fields;
  if (period === 'night' && inherited >= Rank.period && (hour ?? 24) < 6) {
    next.fields = { ...next.fields, period: 'dawn' };
  }
  const value = toIsoValue(next.fields);
  const before = toIsoValue(previous.fields);
  if (value === undefined || before === undefined) return value;
  if (!startsEarlier(value, before)) return value;

  // A clock time that took its part of the day or weekday moves by a day.
  const moved = moveOn(next.fields, Math.min(inherited, Rank.day));
  if (moved === undefined) return undefined;
  next.fields = moved;
  const later = toIsoValue(moved);
  return later !== undefined && !startsEarlier(later, before)
    ? later
    : undefined;
}

/** Words for the day after, which a range end may start with. */
const NEXT_DAY = new Set(['次日', '翌日']);

/**
 * Dates a range end that starts with 次日 or 翌日 on the day after its
 * start: 次日凌晨1点 in 1998年3月5日晚11点至次日凌晨1点 is 1998-03-06T01:00.
 * An end whose start has no full date stays without a value.
 */
function nextDayOf(previous: Expression, next: Expression): void {
  const { year, month, day } = previous.fields;
  if (previous.fields.unresolved || day === undefined) return;
  const moved = moveOn({ year, month, day }, Rank.day);
  if (moved === undefined) return;
  next.fields = { ...next.fields, ...moved, unresolved: undefined };
  next.continuedRank = undefined;
}

/** Returns whether ISO value a starts before b, over their common precision. */
function startsEarlier(a: string, b: string): boolean {
  const length = Math.min(a.length, b.length);
  return a.slice(0, length) < b.slice(0, length);
}

/** Returns the fields one year, month or day later, by the given rank. */
function moveOn(fields: Fields, rank: number): Fields | undefined {
  const { year, month, day } = fields;
  if (year === undefined) return undefined;
  if (rank === Rank.year) return { ...fields, year: year + 1 };
  if (month === undefined) return undefined;
  if (rank === Rank.month) {
    // The 29th to 31st do not exist in every month.
    if (day !== undefined && day > 28) return undefined;
    const next = new Date(Date.UTC(year, month, 1));
    return {
      ...fields,
      year: next.getUTCFullYear(),
      month: next.getUTCMonth() + 1,
    };
  }
  if (rank === Rank.day && day !== undefined) {
    const next = new Date(Date.UTC(year, month - 1, day + 1));
    return {
      ...fields,
      year: next.getUTCFullYear(),
      month: next.getUTCMonth() + 1,
      day: next.getUTCDate(),
    };
  }
  return undefined;
}

/** Rule plugin that labels time expressions 时间 with {@link findTimes}. */
export const timePlugin: RulePlugin = {
  name: 'time',
  labels: [LABEL],
  find: findTimes,
};
