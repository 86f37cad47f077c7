/** Month and day of a festival's date in the year it is named with. */
export interface MonthDay {
  month: number;
  day: number;
}

/** When a festival falls, in the Gregorian or the Chinese lunar calendar. */
interface FestivalRule {
  calendar: 'gregorian' | 'chinese';
  month: number;
  day: number;
  /** Days from that date to the festival, -1 for the eve 除夕. */
  shift: number;
}

function gregorian(month: number, day: number): FestivalRule {
  return { calendar: 'gregorian', month, day, shift: 0 };
}

function lunar(month: number, day: number, shift = 0): FestivalRule {
  return { calendar: 'chinese', month, day, shift };
}

/**
 * Festivals whose date follows from the year alone. 除夕 is the eve of the
 * 春节 of the same Gregorian year, so 2024年除夕 is 2024-02-09.
 */
const FESTIVAL_RULES: Record<string, FestivalRule> = {
  元旦: gregorian(1, 1),
  劳动节: gregorian(5, 1),
  五一劳动节: gregorian(5, 1),
  国庆节: gregorian(10, 1),
  春节: lunar(1, 1),
  元宵节: lunar(1, 15),
  端午节: lunar(5, 5),
  七夕: lunar(7, 7),
  中秋节: lunar(8, 15),
  重阳节: lunar(9, 9),
  除夕: lunar(1, 1, -1),
  除夕夜: lunar(1, 1, -1),
};

// NOTE: ICU derives every year from modern astronomical new moons and solar
// terms. Historical calendars were computed with older models and may differ
// from it by a day or a month, and dates far ahead depend on new moons
// predicted to the minute. So lunar dates are given only for these years,
// and outside them a lunar festival keeps the year as its value.
const FIRST_LUNAR_YEAR = 1900;
const LAST_LUNAR_YEAR = 2100;

// The first day of lunar month 1 falls from 21 January to 20 February, and a
// month has 29 or 30 days, with at most one leap month before the month
// sought. So the date lies within 71 days after this estimate.
const SEARCH_DAYS = 75;

const DAY_MS = 24 * 3600 * 1000;

let chineseFormat: Intl.DateTimeFormat | null | undefined;
// UTC midnights of lunar dates found, by year, month and day.
const lunarDates = new Map<string, number | undefined>();

/**
 * Returns the Gregorian month and day of a festival in a year. Returns
 * undefined for a festival without a fixed rule, such as 清明节 or 母亲节,
 * and for a lunar festival outside 1900–2100 or on a Node whose ICU lacks
 * the Chinese calendar.
 *
 * @param festival - the festival as written, such as 中秋节
 * @param year - Gregorian year, astronomical numbering
 * @example
 * festivalDate('春节', 2024); // { month: 2, day: 10 }
 */
export function festivalDate(
  festival: string,
  year: number,
): MonthDay | undefined {
  const rule = FESTIVAL_RULES[festival];
  if (rule === undefined) return undefined;
  if (rule.calendar === 'gregorian') {
    return { month: rule.month, day: rule.day };
  }
  const found = lunarTime(year, rule.month, rule.day);
  if (found === undefined) return undefined;
  const date = new Date(found + rule.shift * DAY_MS);
  return { month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

/** A day of the proleptic Gregorian calendar. */
export interface GregorianDate {
  year: number;
  month: number;
  day: number;
}

/**
 * Returns the Gregorian date of a day of the Chinese lunar calendar in the
 * Chinese year that begins in a Gregorian year. A day of 腊月 often falls in
 * the next Gregorian year. Returns undefined outside 1900–2100, on a Node
 * whose ICU lacks the Chinese calendar, and for a day the month does not
 * have, such as the 30th of a month of 29 days.
 *
 * @param year - Gregorian year in which the Chinese year begins
 * @example
 * lunarDate(1998, 1, 1); // { year: 1998, month: 1, day: 28 }
 */
export function lunarDate(
  year: number,
  month: number,
  day: number,
): GregorianDate | undefined {
  const found = lunarTime(year, month, day);
  if (found === undefined) return undefined;
  const date = new Date(found);
  return {
    year: date.getUTCFullYear(),
    month: date.getUTCMonth() + 1,
    day: date.getUTCDate(),
  };
}

/** Returns the UTC midnight, in epoch milliseconds, of a lunar date. */
function lunarTime(
  year: number,
  month: number,
  day: number,
): number | undefined {
  if (year < FIRST_LUNAR_YEAR || year > LAST_LUNAR_YEAR) return undefined;
  const key = `${year}-${month}-${day}`;
  if (!lunarDates.has(key)) {
    lunarDates.set(key, findLunarDate(year, month, day));
  }
  return lunarDates.get(key);
}

/**
 * Finds the UTC midnight of a lunar month and day in the Chinese year that
 * begins in a Gregorian year. Dates keep to the regular month, not to a
 * leap month of the same number, which formatToParts names such as "4bis".
 * The search runs forward from the earliest possible day, so it meets the
 * regular month first.
 */
function findLunarDate(
  year: number,
  month: number,
  day: number,
): number | undefined {
  const format = chineseCalendar();
  if (format === null) return undefined;
  const earliest =
    Date.UTC(year, 0, 21) + ((month - 1) * 29 + day - 1) * DAY_MS;
  for (let i = 0; i < SEARCH_DAYS; i++) {
    const date = new Date(earliest + i * DAY_MS);
    // TypeScript's lib lists no part type relatedYear, which ICU gives for
    // the Gregorian year in which the Chinese year begins.
    const parts = new Map<string, string>(
      format.formatToParts(date).map((part) => [part.type, part.value]),
    );
    if (
      parts.get('relatedYear') === String(year) &&
      parts.get('month') === String(month) &&
      parts.get('day') === String(day)
    ) {
      return date.getTime();
    }
  }
  return undefined;
}

/**
 * Returns a formatter that gives the Chinese calendar date of a UTC day, or
 * null when this Node's ICU has no Chinese calendar and the formatter falls
 * back to another one.
 */
function chineseCalendar(): Intl.DateTimeFormat | null {
  if (chineseFormat !== undefined) return chineseFormat;
  // ICU computes the lunar date of the calendar day, so the day is taken in
  // UTC, the zone of the Date.UTC values above.
  const format = new Intl.DateTimeFormat('en-u-ca-chinese', {
    timeZone: 'UTC',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
  });
  chineseFormat =
    format.resolvedOptions().calendar === 'chinese' ? format : null;
  return chineseFormat;
}
