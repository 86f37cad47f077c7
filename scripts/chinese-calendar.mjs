#!/usr/bin/env node
/**
 * Generates src/rules/chinese-calendar-data.ts, the table of Chinese lunar
 * years 1900–2100, from lunar-javascript, and checks the compiled converter
 * against lunar-javascript and solarlunar on every day of those years.
 *
 * The two references are not dependencies of uie-batch, so install them in
 * a scratch folder and pass that folder:
 *
 *   npm install --prefix /tmp/lunarref lunar-javascript solarlunar
 *   node scripts/chinese-calendar.mjs write /tmp/lunarref
 *   npx tsc -p tsconfig.json
 *   node scripts/chinese-calendar.mjs check /tmp/lunarref
 *
 * lunar-javascript computes new moons and solar terms with the astronomical
 * algorithms of the 寿星万年历 calendar program, and corrects dates before
 * 1960 by its own tables. solarlunar reads a table of month lengths.
 * `check` converts the lunar date that each reference gives for a day back
 * through the table and expects the same day. It exits 1 when the table
 * differs from lunar-javascript on any day, or from solarlunar outside the
 * years in SOLARLUNAR_DIFFERENCES. It also counts the days on which this
 * Node's ICU differs from the table.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const FIRST_YEAR = 1900;
const LAST_YEAR = 2100;
const DAY_MS = 24 * 3600 * 1000;

const DATA_FILE = new URL(
  '../src/rules/chinese-calendar-data.ts',
  import.meta.url,
);
const COMPILED_DATA = new URL(
  '../dist/src/rules/chinese-calendar-data.js',
  import.meta.url,
);
const COMPILED_CONVERTER = new URL(
  '../dist/src/rules/chinese-calendar.js',
  import.meta.url,
);

/**
 * Chinese years in which solarlunar differs from lunar-javascript, and why
 * the table keeps lunar-javascript's dates. The new moon times are
 * lunar-javascript's, in Beijing time.
 */
const SOLARLUNAR_DIFFERENCES = new Map([
  [
    1933,
    'solarlunar 3.1.0 gives the leap fifth month 29 days and starts the ' +
      'sixth month on 22 July. The new moon fell at 00:03 on 23 July, and ' +
      'ICU 78 and the ICU4X table from Reingold and Dershowitz also give ' +
      'the leap month 30 days.',
  ],
  [
    2097,
    'solarlunar 3.1.0 starts the seventh month on 8 August. The new moon ' +
      'falls at 23:59:57 on 7 August, and ICU 78, ICU4X and the Hong Kong ' +
      "Observatory's table start the month on 7 August.",
  ],
]);

const { positionals } = parseArgs({ allowPositionals: true });
const [command, referenceDir] = positionals;
if (!['write', 'check'].includes(command) || referenceDir === undefined) {
  console.error('usage: node scripts/chinese-calendar.mjs write|check DIR');
  console.error('DIR is the folder where lunar-javascript and solarlunar');
  console.error('are installed (npm install --prefix DIR ...).');
  process.exit(2);
}
const references = loadReferences(referenceDir);
const years = buildYears(references.lunarJavascript);
if (command === 'write') {
  await writeTable(years, references.versions);
} else {
  process.exitCode = (await checkTable(years, references)) ? 0 : 1;
}

/** Loads both reference libraries from the folder they were installed in. */
function loadReferences(dir) {
  const require = createRequire(join(dir, 'node_modules', 'index.js'));
  const version = (name) =>
    JSON.parse(
      readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8'),
    ).version;
  let lunarJavascript;
  let solarlunar;
  try {
    lunarJavascript = require('lunar-javascript');
    solarlunar = require('solarlunar');
  } catch (err) {
    throw new Error(
      `lunar-javascript or solarlunar not found in ${dir}/node_modules. ` +
        `Install them with: npm install --prefix ${dir} lunar-javascript solarlunar`,
      { cause: err },
    );
  }
  return {
    lunarJavascript,
    // The CommonJS build of solarlunar 3 exports the API as `default`.
    solarlunar: solarlunar.default ?? solarlunar,
    versions: {
      'lunar-javascript': version('lunar-javascript'),
      solarlunar: version('solarlunar'),
    },
  };
}

/**
 * Reads each Chinese year from lunar-javascript: the UTC midnight of its
 * first day, its month lengths in order, and the month its leap month
 * follows (0 for none).
 */
function buildYears({ LunarYear, Solar }) {
  const built = [];
  for (let year = FIRST_YEAR; year <= LAST_YEAR; year++) {
    const months = LunarYear.fromYear(year).getMonthsInYear();
    const first = Solar.fromJulianDay(months[0].getFirstJulianDay());
    const start = Date.UTC(
      first.getYear(),
      first.getMonth() - 1,
      first.getDay(),
    );
    const leapMonth = Math.abs(
      months.find((m) => m.getMonth() < 0)?.getMonth() ?? 0,
    );
    const lengths = months.map((m) => m.getDayCount());
    validateYear(year, lengths, leapMonth);
    built.push({ year, start, lengths, leapMonth });
  }
  return built;
}

function validateYear(year, lengths, leapMonth) {
  if (lengths.length !== (leapMonth === 0 ? 12 : 13)) {
    throw new Error(
      `invalid year ${year} from lunar-javascript: ${lengths.length} ` +
        `months with leap month ${leapMonth}, expected 12, or 13 with one`,
    );
  }
  if (lengths.some((days) => days !== 29 && days !== 30)) {
    throw new Error(
      `invalid year ${year} from lunar-javascript: month lengths ` +
        `${lengths}, expected 29 or 30 days each`,
    );
  }
}

/**
 * Packs a year into one number as chinese-calendar-data.ts describes: bit i
 * set when month i (counting the leap month) has 30 days, the leap month in
 * bits 16–19, the days from 21 January to the first day in bits 20–27.
 */
function packYear({ year, start, lengths, leapMonth }) {
  const newYear = (start - Date.UTC(year, 0, 21)) / DAY_MS;
  if (newYear < 0 || newYear > 0xff) {
    throw new Error(
      `invalid year ${year}: its first day is ${newYear} days after ` +
        '21 January, outside the 0–255 that the packed entry stores',
    );
  }
  let longMonths = 0;
  lengths.forEach((days, i) => {
    if (days === 30) longMonths |= 1 << i;
  });
  return (newYear << 20) | (leapMonth << 16) | longMonths;
}

/** Writes a packed year as 0xNN_L_MMMM, the fields of packYear. */
function hex(packed) {
  const digits = packed.toString(16).padStart(7, '0');
  return `0x${digits.slice(0, 2)}_${digits[2]}_${digits.slice(3)}`;
}

/** Writes the packed table as TypeScript, formatted by the project's Prettier. */
async function writeTable(built, versions) {
  const rows = [];
  for (let i = 0; i < built.length; i += 10) {
    const decade = built.slice(i, i + 10);
    const last = decade.at(-1).year;
    const years = last === decade[0].year ? last : `${decade[0].year}–${last}`;
    rows.push(`  // ${years}`);
    rows.push(`  ${decade.map((y) => hex(packYear(y))).join(', ')},`);
  }
  const source = `// Generated by scripts/chinese-calendar.mjs from lunar-javascript ${versions['lunar-javascript']}.
// Its check command compares the table with lunar-javascript and solarlunar
// on every day. Edit the script, not this file.

/** Chinese year of the first entry of CHINESE_YEARS. */
export const FIRST_CHINESE_YEAR = ${FIRST_YEAR};

/**
 * Chinese years ${FIRST_YEAR}–${LAST_YEAR}, one number each, written 0xNN_L_MMMM.
 * MMMM has bit i set when month i of the year, counting the leap month in
 * its place, has 30 days rather than 29. L is the month that the leap month
 * follows, 0 for none. NN is the number of days from 21 January to the first
 * day of the year, in the Gregorian year of the same number.
 */
export const CHINESE_YEARS: readonly number[] = [
${rows.join('\n')}
];
`;
  const prettier = await import('prettier');
  const options = await prettier.resolveConfig(DATA_FILE);
  const formatted = await prettier.format(source, {
    ...options,
    filepath: fileURLToPath(DATA_FILE),
  });
  writeFileSync(DATA_FILE, formatted);
  console.log(`wrote ${built.length} years to ${fileURLToPath(DATA_FILE)}`);
}

/**
 * Checks the compiled table and converter against both references and
 * prints what differs. Returns whether everything matched or differed only
 * where SOLARLUNAR_DIFFERENCES expects it.
 */
async function checkTable(built, references) {
  const { CHINESE_YEARS, FIRST_CHINESE_YEAR } =
    await importCompiled(COMPILED_DATA);
  const { lunarToGregorian } = await importCompiled(COMPILED_CONVERTER);
  let ok = checkPacked(built, CHINESE_YEARS, FIRST_CHINESE_YEAR);

  const days = compareDays(built, references, lunarToGregorian);
  ok = reportDays(days) && ok;
  ok = compareMonths(built, references.solarlunar) && ok;
  reportIcu(days.icuByYear);
  return ok;
}

async function importCompiled(url) {
  try {
    return await import(url);
  } catch (err) {
    if (err.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new Error(
      `${fileURLToPath(url)} not found. Build first: npx tsc -p tsconfig.json`,
      { cause: err },
    );
  }
}

/** Compares the compiled table with one packed from lunar-javascript now. */
function checkPacked(built, compiled, firstYear) {
  const stale = built.filter(
    (year, i) => compiled[i] !== packYear(year) || firstYear !== FIRST_YEAR,
  );
  if (compiled.length !== built.length || stale.length > 0) {
    const list = stale.map((y) => y.year).join(', ');
    console.log(`compiled table differs from lunar-javascript in: ${list}`);
    console.log('run `write`, then `npx tsc -p tsconfig.json`, then `check`');
    return false;
  }
  console.log(
    `compiled table matches lunar-javascript for ${built.length} years`,
  );
  return true;
}

/**
 * Walks every day of Chinese years 1900–2100. For each, converts the lunar
 * date that each reference gives back through the table, and compares ICU's
 * lunar date with lunar-javascript's.
 */
function compareDays(built, references, lunarToGregorian) {
  const { Solar } = references.lunarJavascript;
  const icu = new Intl.DateTimeFormat('en-u-ca-chinese', {
    timeZone: 'UTC',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
  });
  const first = built[0].start;
  const lastYear = built.at(-1);
  const sum = lastYear.lengths.reduce((total, days) => total + days, 0);
  const last = lastYear.start + (sum - 1) * DAY_MS;
  const result = {
    first,
    last,
    checked: 0,
    lunarJavascript: [],
    solarlunar: [],
    solarlunarMissing: 0,
    icuByYear: new Map(),
  };

  for (let time = first; time <= last; time += DAY_MS) {
    const date = new Date(time);
    const [year, month, day] = [
      date.getUTCFullYear(),
      date.getUTCMonth() + 1,
      date.getUTCDate(),
    ];
    const expected = isoDate({ year, month, day });
    result.checked++;

    const lunar = Solar.fromYmd(year, month, day).getLunar();
    const fromLunarJavascript = {
      year: lunar.getYear(),
      month: Math.abs(lunar.getMonth()),
      day: lunar.getDay(),
      isLeapMonth: lunar.getMonth() < 0,
    };
    if (convert(lunarToGregorian, fromLunarJavascript) !== expected) {
      result.lunarJavascript.push({ expected, lunar: fromLunarJavascript });
    }

    // solarlunar returns -1 for days after 2100-12-31.
    const other = references.solarlunar.solar2lunar(year, month, day);
    if (other === -1) {
      result.solarlunarMissing++;
    } else {
      const fromSolarlunar = {
        year: other.lYear,
        month: other.lMonth,
        day: other.lDay,
        isLeapMonth: other.isLeap,
      };
      if (convert(lunarToGregorian, fromSolarlunar) !== expected) {
        result.solarlunar.push({
          expected,
          lunar: fromSolarlunar,
          table: fromLunarJavascript,
        });
      }
    }

    const fromIcu = icuDate(icu, date);
    if (label(fromIcu) !== label(fromLunarJavascript)) {
      const count = result.icuByYear.get(fromLunarJavascript.year) ?? 0;
      result.icuByYear.set(fromLunarJavascript.year, count + 1);
    }
  }
  return result;
}

function convert(lunarToGregorian, { year, month, day, isLeapMonth }) {
  const date = lunarToGregorian(year, month, day, isLeapMonth);
  return date === undefined ? 'no date' : isoDate(date);
}

function isoDate({ year, month, day }) {
  const pad = (value) => String(value).padStart(2, '0');
  return `${year}-${pad(month)}-${pad(day)}`;
}

/** Writes a lunar date as 1987-L6-7 for the 7th of the leap sixth month. */
function label({ year, month, day, isLeapMonth }) {
  return `${year}-${isLeapMonth ? 'L' : ''}${month}-${day}`;
}

/** Returns ICU's Chinese calendar date of a UTC day. */
function icuDate(format, date) {
  // ICU names the Gregorian year in which the Chinese year begins
  // relatedYear, and a leap month such as the leap sixth month "6bis".
  const parts = new Map(
    format.formatToParts(date).map((part) => [part.type, part.value]),
  );
  const month = parts.get('month');
  return {
    year: Number(parts.get('relatedYear')),
    month: Number.parseInt(month, 10),
    day: Number(parts.get('day')),
    isLeapMonth: month.endsWith('bis'),
  };
}

/** Prints the day comparison. Returns whether it found nothing unexpected. */
function reportDays(days) {
  const span = `${isoDate(utcParts(days.first))} to ${isoDate(utcParts(days.last))}`;
  console.log(`days checked: ${days.checked} (${span})`);

  console.log(
    `days on which the table differs from lunar-javascript: ${days.lunarJavascript.length}`,
  );
  for (const { expected, lunar } of days.lunarJavascript.slice(0, 20)) {
    console.log(`  ${expected}: lunar-javascript ${label(lunar)}`);
  }

  const covered = days.checked - days.solarlunarMissing;
  console.log(
    `days on which the table differs from solarlunar: ${days.solarlunar.length}` +
      ` of ${covered} (solarlunar has no data for the last ${days.solarlunarMissing})`,
  );
  let ok = days.lunarJavascript.length === 0;
  const byYear = new Map();
  for (const difference of days.solarlunar) {
    const year = difference.table.year;
    byYear.set(year, [...(byYear.get(year) ?? []), difference]);
  }
  for (const [year, differences] of byYear) {
    const from = differences[0].expected;
    const to = differences.at(-1).expected;
    console.log(`  ${year}: ${differences.length} days, ${from} to ${to}`);
    const { expected, lunar, table } = differences[0];
    console.log(
      `    e.g. ${expected} is ${label(table)} in the table, ${label(lunar)} in solarlunar`,
    );
    const reason = SOLARLUNAR_DIFFERENCES.get(year);
    console.log(`    ${reason ?? 'UNEXPECTED: not in SOLARLUNAR_DIFFERENCES'}`);
    if (reason === undefined) ok = false;
  }
  for (const year of SOLARLUNAR_DIFFERENCES.keys()) {
    if (!byYear.has(year)) {
      console.log(`  ${year} is in SOLARLUNAR_DIFFERENCES but agrees now`);
      ok = false;
    }
  }
  return ok;
}

function utcParts(time) {
  const date = new Date(time);
  return {
    year: date.getUTCFullYear(),
    month: date.getUTCMonth() + 1,
    day: date.getUTCDate(),
  };
}

/**
 * Compares each year's month lengths and leap month with solarlunar's own
 * table. That also covers the end of 2100, which solarlunar cannot convert
 * day by day. The first days of the years are compared in compareDays.
 */
function compareMonths(built, solarlunar) {
  let ok = true;
  const differing = [];
  for (const { year, lengths, leapMonth } of built) {
    const theirs = [];
    for (let month = 1; month <= 12; month++) {
      theirs.push(solarlunar.monthDays(year, month));
      if (solarlunar.leapMonth(year) === month) {
        theirs.push(solarlunar.leapDays(year));
      }
    }
    if (
      solarlunar.leapMonth(year) === leapMonth &&
      theirs.join() === lengths.join()
    ) {
      continue;
    }
    differing.push(year);
    if (!SOLARLUNAR_DIFFERENCES.has(year)) ok = false;
  }
  const list = differing.join(', ') || 'none';
  console.log(`years whose months differ from solarlunar's: ${list}`);
  return ok;
}

/** Prints, for information, how far this Node's ICU is from the table. */
function reportIcu(icuByYear) {
  const total = [...icuByYear.values()].reduce((sum, days) => sum + days, 0);
  const years = [...icuByYear].map(([year, days]) => `${year} (${days})`);
  console.log(
    `days on which ICU ${process.versions.icu} differs from the table: ` +
      `${total}, in Chinese years ${years.join(', ') || 'none'}`,
  );
}
