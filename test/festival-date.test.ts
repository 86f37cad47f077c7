import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { festivalDate } from '../src/rules/festival-date.js';

/** Returns a festival's date in a year as YYYY-MM-DD, or undefined. */
function isoDate(festival: string, year: number): string | undefined {
  const date = festivalDate(festival, year);
  if (date === undefined) return undefined;
  const month = String(date.month).padStart(2, '0');
  const day = String(date.day).padStart(2, '0');
  return `${year}-${month}-${day}`;
}

/** Festival, year and its Gregorian date. */
const KNOWN: [festival: string, year: number, date: string][] = [
  ['春节', 1949, '1949-01-29'],
  ['春节', 1998, '1998-01-28'],
  ['春节', 2000, '2000-02-05'],
  ['春节', 2008, '2008-02-07'],
  ['春节', 2020, '2020-01-25'],
  ['春节', 2023, '2023-01-22'],
  ['春节', 2024, '2024-02-10'],
  ['春节', 2025, '2025-01-29'],
  ['元宵节', 2024, '2024-02-24'],
  ['端午节', 2023, '2023-06-22'],
  ['端午节', 2024, '2024-06-10'],
  ['端午节', 2025, '2025-05-31'],
  ['七夕', 2024, '2024-08-10'],
  // 2025 has a leap sixth month, so 七夕 comes after it.
  ['七夕', 2025, '2025-08-29'],
  ['中秋节', 2023, '2023-09-29'],
  ['中秋节', 2024, '2024-09-17'],
  ['中秋节', 2025, '2025-10-06'],
  ['重阳节', 2024, '2024-10-11'],
  ['除夕', 2023, '2023-01-21'],
  ['除夕', 2024, '2024-02-09'],
  ['除夕夜', 2025, '2025-01-28'],
  ['中秋节', 1949, '1949-10-06'],
  ['端午节', 2000, '2000-06-06'],
  ['重阳节', 2018, '2018-10-17'],
  ['元旦', 2024, '2024-01-01'],
  ['劳动节', 2024, '2024-05-01'],
  ['国庆节', 2024, '2024-10-01'],
];

/**
 * Festivals in years in which astronomical calculations, such as the Chinese
 * calendar of ICU 78, are a day or a month off the published calendar.
 */
const PUBLISHED: [festival: string, year: number, date: string][] = [
  ['春节', 1954, '1954-02-03'],
  ['元宵节', 1954, '1954-02-17'],
  // The leap month of 1987 follows the sixth month, so 七夕 comes after it.
  ['七夕', 1987, '1987-08-30'],
  ['七夕', 2012, '2012-08-23'],
  ['春节', 2027, '2027-02-06'],
  ['除夕', 2027, '2027-02-05'],
  ['春节', 2030, '2030-02-03'],
  ['除夕', 2030, '2030-02-02'],
];

describe('festivalDate', () => {
  describe('when the festival has a rule', () => {
    for (const [festival, year, date] of KNOWN) {
      it(`dates ${festival} ${year}`, () => {
        assert.equal(isoDate(festival, year), date);
      });
    }
  });

  describe('when calculation and almanac differ', () => {
    for (const [festival, year, date] of PUBLISHED) {
      it(`dates ${festival} ${year}`, () => {
        assert.equal(isoDate(festival, year), date);
      });
    }
  });

  describe('when the year is near 1900 or 2100', () => {
    it('dates 春节 1900', () => {
      assert.equal(isoDate('春节', 1900), '1900-01-31');
    });

    it('dates 中秋节 2100', () => {
      assert.notEqual(isoDate('中秋节', 2100), undefined);
    });

    it('leaves 春节 1899 undated', () => {
      assert.equal(festivalDate('春节', 1899), undefined);
    });

    it('leaves 中秋节 2101 undated', () => {
      assert.equal(festivalDate('中秋节', 2101), undefined);
    });

    it('still dates 元旦 1850', () => {
      assert.equal(isoDate('元旦', 1850), '1850-01-01');
    });
  });

  it('leaves 清明节 undated', () => {
    assert.equal(festivalDate('清明节', 2024), undefined);
  });
});
