import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  lunarToGregorian,
  type GregorianDate,
} from '../src/rules/chinese-calendar.js';

function iso(date: GregorianDate | undefined): string | undefined {
  if (date === undefined) return undefined;
  const month = String(date.month).padStart(2, '0');
  const day = String(date.day).padStart(2, '0');
  return `${date.year}-${month}-${day}`;
}

/** Returns the day after a date as YYYY-MM-DD. */
function nextDay(date: GregorianDate): string {
  const next = new Date(Date.UTC(date.year, date.month - 1, date.day + 1));
  return next.toISOString().slice(0, 10);
}

/** Returns the last day of a Chinese year, in its twelfth or leap month. */
function lastDay(year: number): GregorianDate | undefined {
  for (const isLeapMonth of [true, false]) {
    for (const day of [30, 29]) {
      const date = lunarToGregorian(year, 12, day, isLeapMonth);
      if (date !== undefined) return date;
    }
  }
  return undefined;
}

/**
 * 春节 of 2000–2030 as printed in calendars, typed in here so that the test
 * does not depend on the table or on the script that generates it.
 */
const NEW_YEARS = [
  '2000-02-05',
  '2001-01-24',
  '2002-02-12',
  '2003-02-01',
  '2004-01-22',
  '2005-02-09',
  '2006-01-29',
  '2007-02-18',
  '2008-02-07',
  '2009-01-26',
  '2010-02-14',
  '2011-02-03',
  '2012-01-23',
  '2013-02-10',
  '2014-01-31',
  '2015-02-19',
  '2016-02-08',
  '2017-01-28',
  '2018-02-16',
  '2019-02-05',
  '2020-01-25',
  '2021-02-12',
  '2022-02-01',
  '2023-01-22',
  '2024-02-10',
  '2025-01-29',
  '2026-02-17',
  '2027-02-06',
  '2028-01-26',
  '2029-02-13',
  '2030-02-03',
];

/** Lunar year, month, day, whether leap, and the Gregorian date. */
const KNOWN: [
  year: number,
  month: number,
  day: number,
  isLeapMonth: boolean,
  date: string,
][] = [
  [1900, 1, 1, false, '1900-01-31'],
  [1933, 5, 30, true, '1933-07-22'],
  [1933, 6, 1, false, '1933-07-23'],
  [1987, 6, 1, true, '1987-07-26'],
  [1987, 7, 7, false, '1987-08-30'],
  [1998, 12, 23, false, '1999-02-08'],
  [2023, 2, 1, true, '2023-03-22'],
  [2025, 6, 1, true, '2025-07-25'],
  [2033, 11, 1, true, '2033-12-22'],
  [2097, 7, 1, false, '2097-08-07'],
  [2100, 12, 29, false, '2101-01-28'],
];

/** Dates the calendar does not have, with the reason. */
const INVALID: [
  year: number,
  month: number,
  day: number,
  isLeapMonth: boolean,
  reason: string,
][] = [
  [1899, 1, 1, false, 'year before 1900'],
  [2101, 1, 1, false, 'year after 2100'],
  [2024, 6, 1, true, 'leap month the year lacks'],
  [2025, 5, 1, true, 'leap month after another month'],
  [2024, 12, 30, false, '30th of a month of 29 days'],
  [2024, 13, 1, false, 'month 13'],
  [2024, 1, 0, false, 'day 0'],
  [2024, 1, 1.5, false, 'fractional day'],
];

describe('lunarToGregorian', () => {
  describe('when the date is 春节 of 2000–2030', () => {
    NEW_YEARS.forEach((date, index) => {
      const year = 2000 + index;
      it(`dates ${year}`, () => {
        assert.equal(iso(lunarToGregorian(year, 1, 1)), date);
      });
    });
  });

  describe('when the date exists', () => {
    for (const [year, month, day, isLeapMonth, date] of KNOWN) {
      const leap = isLeapMonth ? ' leap' : '';
      it(`dates ${year}-${month}${leap}-${day}`, () => {
        assert.equal(
          iso(lunarToGregorian(year, month, day, isLeapMonth)),
          date,
        );
      });
    }
  });

  describe('when the date does not exist', () => {
    for (const [year, month, day, isLeapMonth, reason] of INVALID) {
      it(`returns undefined for ${reason}`, () => {
        assert.equal(
          lunarToGregorian(year, month, day, isLeapMonth),
          undefined,
        );
      });
    }
  });

  it('ends each year the day before the next', () => {
    for (let year = 1900; year < 2100; year++) {
      const last = lastDay(year);
      assert.notEqual(last, undefined, `no last day of ${year}`);
      const first = iso(lunarToGregorian(year + 1, 1, 1));
      assert.equal(nextDay(last!), first, `year ${year}`);
    }
  });
});
