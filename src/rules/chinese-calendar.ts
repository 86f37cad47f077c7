import { CHINESE_YEARS, FIRST_CHINESE_YEAR } from './chinese-calendar-data.js';

/** A day of the proleptic Gregorian calendar. */
export interface GregorianDate {
  year: number;
  month: number;
  day: number;
}

// NOTE: The table covers the years for which it was checked against two
// references. Dates far ahead are predictions. In 2057 the Hong Kong
// Observatory starts the ninth month on 28 September, but the table, like
// both references, starts it on 29 September, because that new moon falls
// within a minute of midnight.
const LAST_CHINESE_YEAR = FIRST_CHINESE_YEAR + CHINESE_YEARS.length - 1;

// Fields of a CHINESE_YEARS entry, described in chinese-calendar-data.ts.
const LONG_MONTH_BITS = 0x1fff;
const LEAP_MONTH_SHIFT = 16;
const NEW_YEAR_SHIFT = 20;

/**
 * Converts a date of the Chinese lunar calendar, for years 1900–2100, to the
 * Gregorian date. The table behind it follows the calendar of Chinese
 * almanacs rather than ICU's Chinese calendar, which in ICU 78 differs from
 * it on 417 days. scripts/chinese-calendar.mjs generates the table and
 * describes how it was checked.
 *
 * @param year - Gregorian year in which the Chinese year begins, so a day of
 *   腊月 may fall in the next Gregorian year
 * @param month - month from 1 to 12, such as 1 for 正月
 * @param day - day of the month from 1 to 30
 * @param isLeapMonth - whether the date lies in the leap month that follows
 *   month, such as 闰六月 after 六月
 * @returns the Gregorian date, or undefined for a year outside 1900–2100, a
 *   leap month the year does not have, or a day the month does not have,
 *   such as the 30th of a month of 29 days
 * @example
 * lunarToGregorian(1987, 7, 7); // { year: 1987, month: 8, day: 30 }
 * lunarToGregorian(1987, 6, 1, true); // { year: 1987, month: 7, day: 26 }
 */
export function lunarToGregorian(
  year: number,
  month: number,
  day: number,
  isLeapMonth = false,
): GregorianDate | undefined {
  if (!Number.isInteger(year) || !Number.isInteger(month)) return undefined;
  if (year < FIRST_CHINESE_YEAR || year > LAST_CHINESE_YEAR) return undefined;
  if (month < 1 || month > 12) return undefined;
  const entry = CHINESE_YEARS[year - FIRST_CHINESE_YEAR];
  const leapMonth = (entry >> LEAP_MONTH_SHIFT) & 0xf;
  if (isLeapMonth && month !== leapMonth) return undefined;

  // Months are counted in order, so the leap month and every month after it
  // sit one place further on.
  const index =
    isLeapMonth || (leapMonth !== 0 && month > leapMonth) ? month : month - 1;
  if (!Number.isInteger(day) || day < 1 || day > monthLength(entry, index)) {
    return undefined;
  }

  let days = (entry >> NEW_YEAR_SHIFT) + day - 1;
  for (let i = 0; i < index; i++) days += monthLength(entry, i);
  const date = new Date(Date.UTC(year, 0, 21 + days));
  return {
    year: date.getUTCFullYear(),
    month: date.getUTCMonth() + 1,
    day: date.getUTCDate(),
  };
}

/** Days of the month at an index of the year, counting the leap month. */
function monthLength(entry: number, index: number): number {
  return ((entry & LONG_MONTH_BITS) >> index) & 1 ? 30 : 29;
}
