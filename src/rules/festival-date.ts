import { lunarToGregorian } from './chinese-calendar.js';

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

/**
 * Returns the Gregorian month and day of a festival in a year. Returns
 * undefined for a festival without a fixed rule, such as 清明节 or 母亲节,
 * and for a lunar festival outside 1900–2100, the years of the lunar
 * calendar table.
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
  const found = lunarToGregorian(year, rule.month, rule.day);
  if (found === undefined) return undefined;
  const date = new Date(
    Date.UTC(found.year, found.month - 1, found.day + rule.shift),
  );
  return { month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}
