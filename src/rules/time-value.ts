/** Part of the day, such as 上午 or 晚上, which shifts clock hours. */
export type Period = 'morning' | 'noon' | 'afternoon' | 'night' | 'daytime';

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
  /** Whether the date depends on context the text lacks (今天, 98年, 正月). */
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
    case 'morning':
      return hour < 12 ? hour : undefined;
    case 'noon':
      if (hour === 11 || hour === 12) return hour;
      return hour === 1 || hour === 2 ? hour + 12 : undefined;
    case 'afternoon':
      if (hour >= 1 && hour < 12) return hour + 12;
      return hour >= 12 && hour < 24 ? hour : undefined;
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
 * Returns the most precise ISO 8601 value that contains the expression, or
 * undefined when the text alone does not fix it or the date is invalid.
 * Pieces finer than the date without a clock time (上午, 春节, 年底) leave the
 * value at the date, month or year they narrow.
 */
export function toIsoValue(fields: Fields): string | undefined {
  if (fields.unresolved) return undefined;
  if (fields.year === undefined) return formatEra(fields);

  const year = formatYear(fields.year);
  if (year === undefined || fields.month === undefined) return year;
  const month = `${year}-${pad(fields.month, 2)}`;
  if (fields.day === undefined) return month;
  if (fields.day > daysInMonth(fields.year, fields.month)) return undefined;
  const date = `${month}-${pad(fields.day, 2)}`;
  if (fields.hour === undefined) return date;

  const hour = resolveHour(fields.hour, fields.period);
  if (hour === undefined) return undefined;
  const minute = pad(fields.minute ?? 0, 2);
  const second = fields.second === undefined ? '' : `:${pad(fields.second, 2)}`;
  return `${date}T${pad(hour, 2)}:${minute}${second}`;
}
