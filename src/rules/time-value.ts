import { lunarToGregorian, type GregorianDate } from './chinese-calendar.js';
import { festivalDate } from './festival-date.js';

/** Part of the day, such as 上午 or 晚上, which shifts clock hours. */
export type Period =
  'dawn' | 'morning' | 'noon' | 'afternoon' | 'dusk' | 'night' | 'daytime';

/** Calendar facts that one piece of an expression adds to its value. */
export interface Fields {
  /** Astronomical year, in which 1 BC is 0 and 2 BC is -1. */
  year?: number;
  month?: number;
  day?: number;
  hour?: number;
  minute?: number;
  second?: number;
  period?: Period;
  /** Ordinal century as written, such as 20 for 20世纪. */
  century?: number;
  /** Tens of a two-digit decade, such as 90 for 90年代. */
  decadeTens?: number;
  /** First year of a four-digit decade, such as 1990 for 1990年代. */
  decadeStart?: number;
  /** Festival as written, such as 春节, which fixes a date within the year. */
  festival?: string;
  /** Month of the Chinese lunar calendar, such as 1 for 正月. */
  lunarMonth?: number;
  /** Day of a lunar month, such as 1 for 初一. */
  lunarDay?: number;
  /** Whether the lunar month is the year's leap month (闰二月). */
  lunarLeap?: boolean;
  /** Day of the week, 1 for Monday to 7 for Sunday. */
  weekday?: number;
  /** Whether the date depends on context the text lacks (今天, 98年, 上个月). */
  unresolved?: boolean;
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

function formatYear(year: number): string | undefined {
  if (year < -9999 || year > 9999) return undefined;
  return year < 0 ? `-${pad(-year, 4)}` : pad(year, 4);
}

/** Days in a month of the proleptic Gregorian calendar. */
function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return days[month - 1];
}

/**
 * Converts a 12-hour reading to 0–23 by the part of the day. Returns
 * undefined when the hour contradicts the part of the day, or when the
 * calendar day is unclear, as 晚上12点 and 晚上1点 may fall on the next day.
 */
function resolveHour(
  hour: number,
  period: Period | undefined,
): number | undefined {
  switch (period) {
    case undefined:
      return hour < 24 ? hour : undefined;
    case 'dawn':
      return hour <= 6 ? hour : undefined;
    case 'morning':
      return hour < 12 ? hour : undefined;
    case 'noon':
      if (hour === 11 || hour === 12) return hour;
      return hour === 1 || hour === 2 ? hour + 12 : undefined;
    case 'afternoon':
      if (hour >= 1 && hour < 12) return hour + 12;
      return hour >= 12 && hour < 24 ? hour : undefined;
    case 'dusk':
      if (hour >= 4 && hour <= 8) return hour + 12;
      return hour >= 16 && hour <= 20 ? hour : undefined;
    case 'night':
      if (hour >= 6 && hour < 12) return hour + 12;
      return hour >= 18 && hour < 24 ? hour : undefined;
    case 'daytime':
      return undefined;
  }
}

/** Formats a century or decade in ISO 8601: 19 for 20世纪, 199 for 1990年代. */
function formatEra(fields: Fields): string | undefined {
  if (fields.decadeStart !== undefined) return pad(fields.decadeStart / 10, 3);
  if (fields.decadeTens !== undefined) {
    if (fields.century === undefined) return undefined;
    return pad((fields.century - 1) * 10 + fields.decadeTens / 10, 3);
  }
  // NOTE: ISO century 19 is 1900–1999, but 20世纪 is strictly 1901–2000.
  // The value follows the common reading of 20世纪 as the 1900s.
  if (fields.century !== undefined && fields.century <= 100) {
    return pad(fields.century - 1, 2);
  }
  return undefined;
}

/**
 * Returns the month and day that a festival adds to a year. Returns the
 * fields' own month and day instead when the festival has no date in that
 * year, or when the text also gives a day or another month (2024年3月春节).
 */
function monthAndDay(
  fields: Fields,
  year: number,
): { month?: number; day?: number } {
  const { month, day, festival } = fields;
  if (festival === undefined || day !== undefined) return { month, day };
  const date = festivalDate(festival, year);
  if (date === undefined) return { month, day };
  if (month !== undefined && month !== date.month) return { month, day };
  return date;
}

/**
 * Returns the most precise ISO 8601 value that contains the expression, or
 * undefined when the text alone does not fix it or the date is invalid: a
 * year (1998), year and month (1998-03), date (1998-03-05), date and time
 * (1998-03-05T09:00), decade (199) or century (19). A festival with a year
 * gives its date, such as 2024-02-10 for 2024年春节. Pieces finer than the
 * date without a clock time (上午, 清明节, 年底) leave the value at the date,
 * month or year they narrow.
 */
export function toIsoValue(fields: Fields): string | undefined {
  if (fields.unresolved) return undefined;
  if (fields.lunarMonth !== undefined) return lunarValue(fields);
  if (fields.year === undefined) return formatEra(fields);

  const year = formatYear(fields.year);
  if (year === undefined) return undefined;
  const { month, day } = monthAndDay(fields, fields.year);
  if (month === undefined) return year;
  if (day === undefined) return `${year}-${pad(month, 2)}`;
  return formatDate({ year: fields.year, month, day }, fields);
}

/**
 * Returns the value of a lunar date with a year, such as 1998-01-28 for
 * 1998年正月初一. A lunar month without its day has no value, because
 * its days may fall in two Gregorian months, and those of 腊月 in the next
 * year.
 */
function lunarValue(fields: Fields): string | undefined {
  const day = fields.lunarDay ?? fields.day;
  if (fields.year === undefined || day === undefined) return undefined;
  const date = lunarToGregorian(
    fields.year,
    fields.lunarMonth!,
    day,
    fields.lunarLeap ?? false,
  );
  return date === undefined ? undefined : formatDate(date, fields);
}

/** Formats a date, with the clock time of the fields when they have one. */
function formatDate(at: GregorianDate, fields: Fields): string | undefined {
  const year = formatYear(at.year);
  if (year === undefined || at.day > daysInMonth(at.year, at.month)) {
    return undefined;
  }
  // A weekday that is not the date's makes one of the two a typo.
  if (fields.weekday !== undefined) {
    const weekday = new Date(Date.UTC(2000, 0, 1));
    weekday.setUTCFullYear(at.year, at.month - 1, at.day);
    if ((weekday.getUTCDay() || 7) !== fields.weekday) return undefined;
  }
  const date = `${year}-${pad(at.month, 2)}-${pad(at.day, 2)}`;
  if (fields.hour === undefined) return date;

  const hour = resolveHour(fields.hour, fields.period);
  if (hour === undefined) return undefined;
  const minute = pad(fields.minute ?? 0, 2);
  const second = fields.second === undefined ? '' : `:${pad(fields.second, 2)}`;
  return `${date}T${pad(hour, 2)}:${minute}${second}`;
}
