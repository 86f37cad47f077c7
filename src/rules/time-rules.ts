import type { Fields, Period } from './time-value.js';

/** One matched piece of an expression, such as 1998年 or 上午. */
export interface Piece {
  /**
   * Granularity, from century (0) to clock time (9). A piece may only follow
   * pieces of lower rank, so 1998年3月 is one expression but 3月1998年 is two.
   */
  rank: number;
  fields: Fields;
}

/** A regular expression for one kind of piece, with a check in context. */
export interface Rule {
  pattern: string;
  /**
   * Returns the piece for a match, or null to reject the match.
   *
   * @param prev - the piece before it in the same expression
   * @param context - for the first piece of an expression that continues
   *   another after 至, 和 or a dash, the last piece of that one
   */
  parse(
    match: RegExpExecArray,
    prev: Piece | undefined,
    context?: Piece,
  ): Piece | null;
}

export const Rank = {
  century: 0,
  decade: 1,
  year: 2,
  season: 3,
  month: 4,
  week: 5,
  day: 6,
  weekday: 7,
  period: 8,
  clock: 9,
} as const;

const DIGIT = '[0-9０-９]';
/** Chinese digits as written digit by digit in years such as 一九九八. */
const CN_DIGIT = '[〇○零一二三四五六七八九]';
const CN_NUMERAL = '[〇○零一二两三四五六七八九十百千]';
/** Lookbehind that stops 125日 and 0.5日 from matching as 25日 and 5日. */
const NOT_AFTER_DIGIT = '(?<![0-9０-９.．])';
const NOT_AFTER_CN = `(?<!${CN_NUMERAL})`;
/** One or two digits that do not continue a longer number. */
const SMALL_NUMBER = `${NOT_AFTER_DIGIT}${DIGIT}{1,2}`;
const CN_MONTH = `${NOT_AFTER_CN}(?:十[一二]?|[一二三四五六七八九])`;
const CN_DAY = `${NOT_AFTER_CN}(?:[一二三]?十[一二三四五六七八九]?|廿[一二三四五六七八九]?|卅一?|[一二三四五六七八九])`;
const CN_HOUR = `${NOT_AFTER_CN}[零〇○一二两三四五六七八九十]{1,3}`;
const CN_MINUTE = '[〇○零一二三四五六七八九十]{1,3}';

/** 初 is 'early in' unless it starts 初次 or a lunar day such as 初一. */
const EARLY = '初(?![次一二三四五六七八九十])';
// People's Daily tags 初, 底 and 末 after a numbered year, month or century
// as a locality word of their own (1997年/t 底/f). After a relative word
// (去年底/t, 本月底/t) and as 年底 (去年/t 年底/t) they are part of the time.
const YEAR_PART = `(?:年(?:${EARLY}|底|末)|上半年|下半年)?`;
const RELATIVE_YEAR_PART = `(?:年?(?:${EARLY}|底|末)|上半年|下半年)?`;
const MONTH_PART = `份?(?:上旬|中旬|下旬)?(?![亮球饼刊薪票])`;
const RELATIVE_MONTH_PART = `份?(?:${EARLY}|底|末|上旬|中旬|下旬)?`;
const CLOCK_END = '(?![0-9０-９]|[:：][0-9０-９])';
const COLON_TIME =
  `(?<hour>${DIGIT}{1,2})[:：](?<minute>${DIGIT}{2})` +
  `(?:[:：](?<second>${DIGIT}{2}))?${CLOCK_END}`;

/**
 * Words right before a two-digit number + 年 that make it a duration
 * (近10年, 过去20年) rather than a year.
 */
const DURATION_BEFORE =
  '近|过去|这|那|每|第|约|满|了|达|历时|整整|经过|未来|前|后|头|多|' +
  '徒刑|时隔|阔别|历经|龄|工作|任职|执教|从教|长达|共|计|有|连续|持续|坚持';
/** Words right after a two-digit number + 年 that make it a duration. */
const DURATION_AFTER =
  '代|来|多|半|左右|以上|以下|以内|之久|之内|之后|之前|内|后|前|间|里|时间|未|没';
/**
 * Words around a four-digit number + 年 that make it a duration, as in
 * 有２８００年历史 and 近2000年, though the number reads as a year.
 */
const LONG_DURATION_BEFORE = /(?:(?<!临)近|约|长达|历时|逾|距今)$/u;
/**
 * Words before a range of years that make it a count (有1000—2000年历史,
 * 距今约1200～1500年, 能活1000—2000年), and words after its end that do.
 */
const COUNTED_RANGE_BEFORE = /(?:(?<!临)近|约|长达|历时|逾|距今|有|活|龄在?)$/u;
const COUNTED_RANGE_AFTER = /(?:的)?历史|之久|前|来/uy;
/** Words after a four-digit number + 年 that make it a duration after 有. */
const LONG_DURATION_AFTER = /(?:的)?历史|之久/uy;
/** Classifiers and nouns after a number that make it a count (15名, 20辆). */
const COUNTED = '[名人位个辆台件次家所项只条张本份元万亿岁多余号]';
/**
 * Text after 7号 that makes it the end of a range of days (5日到7号放假), where 7号
 * before a noun is a number (7号线, 10号文件).
 */
const DATE_END_AHEAD =
  /(?:$|[\s\p{P}]|[上中下]午|[早晚凌傍]|前|后|止|为止|期间|放假|开始|结束|之间)/uy;
/** Words after a day number without a month that make it a count of days. */
const DAY_COUNT_AFTER = /(?:之内|以内|内|无理由)/uy;
// Words that 年 starts as 'annual' (年产值, 年均, 年发电量), which a 后 that
// closes 'after X' can run into: 建成后年均增长.
// Verbs after a score: 以21:15获胜, 2:0击败.
const RESULT_AHEAD =
  /\s*(?:获胜|取胜|战胜|击败|胜出|告负|落败|负于|险胜|力克|大胜|完胜|横扫|淘汰|赢|拿下|逆转|的比分)/uy;
// Last characters of verbs that 后 turns into 'after X was done': 投产后,
// 建成后, 竣工后.
const COMPLETED_BEFORE = /[产成工营运通建装修购立业]$/u;
const ANNUAL_FIGURE_AHEAD =
  /(?:产|均|发电|销售|收入|利润|利税|增长|营业|用[水电]|供|处理|节约|创|接待|吞吐|运[量输]|输送|出口|生产|加工|减少)/uy;
/** A following month, which makes 80年3月 a year though 80年 alone is not. */
const MONTH_AHEAD = /(?:[0-9０-９]{1,2}|十[一二]?|[一二三四五六七八九])月/uy;
/** 元 after a day means yen (100日元), unless it starts 元旦 or 元宵. */
const YEN_AHEAD = /元(?![旦宵])/uy;
/** Characters that make a bare 一点 mean 'a little', as in 一点儿. */
const LITTLE_AHEAD = /[儿都也点不没]/uy;
/** A second hour after a range joiner: the 至11点 of 9点至11点. */
const HOUR_RANGE_AHEAD = new RegExp(
  `[至到—–－~～-](?:${DIGIT}{1,2}|[零〇○一二两三四五六七八九十]{1,3})[点时]`,
  'uy',
);

const PERIOD_WORDS: Record<Period, string> = {
  dawn: '凌晨 拂晓',
  morning: '清晨 早晨 早上 上午',
  noon: '中午 正午 午间',
  afternoon: '下午 午后',
  dusk: '傍晚 黄昏',
  night: '晚上 晚间 夜里 夜间 深夜 半夜 午夜',
  daytime: '白天',
};

const PERIODS = new Map<string, Period>();
for (const [period, words] of Object.entries(PERIOD_WORDS)) {
  for (const word of words.split(' ')) PERIODS.set(word, period as Period);
}

const FESTIVALS = (
  '春节 元旦 元宵节 清明节 端午节 中秋节 国庆节 除夕 除夕夜 圣诞节 平安夜 ' +
  '劳动节 五一劳动节 重阳节 七夕 情人节 妇女节 三八妇女节 青年节 五四青年节 ' +
  '儿童节 六一儿童节 建军节 教师节 母亲节 父亲节 感恩节 复活节 腊八节 新年 ' +
  '七夕节 大年三十 大年夜'
).split(' ');

/** Other names of festivals, dated as the festival they name. */
const FESTIVAL_NAMES: Record<string, string> = {
  七夕节: '七夕',
  大年三十: '除夕',
  大年夜: '除夕夜',
};

/**
 * Short names that mean a festival only right after a year (2024年中秋),
 * because alone they are often other words (清明 'clear', 元宵 the dumpling,
 * 国庆 a given name).
 */
const SHORT_FESTIVALS: Record<string, string> = {
  中秋: '中秋节',
  端午: '端午节',
  元宵: '元宵节',
  国庆: '国庆节',
  重阳: '重阳节',
  清明: '清明节',
  五一: '劳动节',
};

/** A following festival, which makes 9999年国庆节 a year though 9999年 alone is not. */
const FESTIVAL_AHEAD = new RegExp(
  `(?:${alternation([...FESTIVALS, ...Object.keys(SHORT_FESTIVALS)])})`,
  'uy',
);

/** Relative words whose date depends on when the text was written. */
const RELATIVE_DAY = [
  '大?[前后]天(?![气空然才赋性生下])',
  // 光明日报 is a newspaper and 今日头条 an app.
  '[今昨][天日](?!头条)',
  '明天',
  '(?<!光)明日',
  // 第二十六次日本 and 多次日夜 hold 次 + 日本 and 次 + 日夜.
  '(?<![第多这那每首几两一二三四五六七八九十百上下本该此再屡])次日',
  '翌日',
  '同日(?!本)',
  '近日',
  // 工作日前 and 截止日前 are 'before the working day', 项目前期 'the early
  // stage of a project', 抗日前线 'the front against Japan'.
  '(?<![节生假平止作易念期抗])日前(?!夕)',
  '(?<!项)目前',
  '(?<![出体表呈展实发浮])现在',
  '如今',
  '近来',
  '(?<!适)当时(?!间)',
  '此时(?!间)',
  '(?<!换)届时',
  '今后',
];

const CN_DIGIT_VALUES: Record<string, number> = {
  〇: 0,
  // U+25CB WHITE CIRCLE, which People's Daily often writes for 〇 (二○○二年).
  '○': 0,
  零: 0,
  一: 1,
  二: 2,
  两: 2,
  三: 3,
  四: 4,
  五: 5,
  六: 6,
  七: 7,
  八: 8,
  九: 9,
};
const CN_UNIT_VALUES: Record<string, number> = { 十: 10, 百: 100, 千: 1000 };

/**
 * Parses ASCII, full-width or Chinese numerals: 12, １２, 十二, 一九九八.
 * Chinese numerals without 十, 百 or 千 are read digit by digit.
 */
function parseNumeral(written: string): number {
  // 廿 and 卅 are short for 二十 and 三十 (廿五日, 卅一日).
  const text = written.replace('廿', '二十').replace('卅', '三十');
  if (/^[0-9０-９]+$/u.test(text)) {
    const ascii = text.replace(/[０-９]/gu, (ch) =>
      String.fromCharCode(ch.charCodeAt(0) - 0xfee0),
    );
    return Number(ascii);
  }

  const chars = [...text];
  if (!chars.some((ch) => ch in CN_UNIT_VALUES)) {
    return Number(chars.map((ch) => CN_DIGIT_VALUES[ch] ?? 0).join(''));
  }

  let total = 0;
  let current = 0;
  for (const ch of chars) {
    const unit = CN_UNIT_VALUES[ch];
    if (unit === undefined) {
      current = CN_DIGIT_VALUES[ch] ?? 0;
    } else {
      // A unit without a digit before it counts once, so 十二 is 12.
      total += (current || 1) * unit;
      current = 0;
    }
  }
  return total + current;
}

/** Reads a lunar day written 初一, 十五, 二十三 or 廿三. */
function lunarDayNumber(text: string): number {
  return parseNumeral(text.replace('初', ''));
}

function group(match: RegExpExecArray, name: string): string | undefined {
  return match.groups?.[name];
}

/** Parses a named group as a numeral, or returns undefined if it is unset. */
function numberGroup(match: RegExpExecArray, name: string): number | undefined {
  const text = group(match, name);
  return text === undefined ? undefined : parseNumeral(text);
}

/** Tests a sticky pattern right after the match. */
/**
 * Tells whether a range of years that starts at the match counts years:
 * a count word before it or after its end (1000—2000年历史).
 */
function countsYears(match: RegExpExecArray): boolean {
  const before = match.input.slice(Math.max(0, match.index - 2), match.index);
  if (COUNTED_RANGE_BEFORE.test(before)) return true;
  const range = /[0-9０-９]{4}(?:[—–－~～-]{1,2}|[至到])[0-9０-９]{4}年/uy;
  range.lastIndex = match.index;
  if (!range.test(match.input)) return false;
  COUNTED_RANGE_AFTER.lastIndex = range.lastIndex;
  return COUNTED_RANGE_AFTER.test(match.input);
}

/**
 * Tells whether a year ends a range of years that counts years, such as
 * 2000年 in 有1000—2000年历史.
 */
function endsCountedRange(match: RegExpExecArray): boolean {
  const before = match.input.slice(Math.max(0, match.index - 9), match.index);
  const start =
    /([^0-9０-９]{0,2})[0-9０-９]{4}(?:[—–－~～-]{1,2}|[至到])$/u.exec(before);
  if (!start) return false;
  return (
    COUNTED_RANGE_BEFORE.test(start[1]) ||
    isFollowedBy(match, COUNTED_RANGE_AFTER)
  );
}

function isFollowedBy(match: RegExpExecArray, pattern: RegExp): boolean {
  pattern.lastIndex = match.index + match[0].length;
  return pattern.test(match.input);
}

function piece(rank: number, fields: Fields = {}): Piece {
  return { rank, fields };
}

/** Builds a rule that accepts every match as a piece of one rank. */
function wordRule(pattern: string, rank: number, fields: Fields = {}): Rule {
  return { pattern, parse: () => piece(rank, fields) };
}

/** Joins words into an alternation that tries longer words first. */
function alternation(words: Iterable<string>): string {
  return [...words].sort((a, b) => b.length - a.length).join('|');
}

/** Rules for years. A number before 年 is a year only in these forms. */
export const YEAR_RULES: Rule[] = [
  {
    pattern: [
      '(?<era>公元前|公元)',
      `(?<year>${DIGIT}{1,4}|${CN_NUMERAL}{1,6})`,
      `年(?!代)${YEAR_PART}`,
    ].join(''),
    parse(match) {
      const number = numberGroup(match, 'year') ?? 0;
      if (number === 0) return null;
      // Astronomical year numbering has a year 0, so 221 BC is -220.
      const year = group(match, 'era') === '公元前' ? 1 - number : number;
      return piece(Rank.year, { year });
    },
  },
  {
    // Four-digit years from 1000 to 2999, so 5000年 stays a duration.
    // Other four-digit numbers are years only before a month or a
    // festival (3000年3月, 9999年国庆节).
    // NOTE: durations in that range still match, such as 2000年 in 近2000年.
    pattern: [
      `(?<year>${NOT_AFTER_DIGIT}${DIGIT}{4}`,
      `|${NOT_AFTER_CN}${CN_DIGIT}{4})`,
      `年(?!代)度?${YEAR_PART}`,
    ].join(''),
    parse(match) {
      const year = numberGroup(match, 'year') ?? 0;
      if (year === 0) return null;
      const before = match.input.slice(
        Math.max(0, match.index - 2),
        match.index,
      );
      const dated =
        isFollowedBy(match, MONTH_AHEAD) || isFollowedBy(match, FESTIVAL_AHEAD);
      // 近2000年 and 有2800年历史 count years, but 只有1998年3月5日 and
      // 1997年历史题材 name one.
      const counted =
        LONG_DURATION_BEFORE.test(before) ||
        (/有$/u.test(before) && isFollowedBy(match, LONG_DURATION_AFTER)) ||
        endsCountedRange(match);
      if (match[0].endsWith('年') && counted && !dated) return null;
      const inUsualRange = year >= 1000 && year <= 2999;
      if (!inUsualRange && !dated) return null;
      return piece(Rank.year, { year });
    },
  },
  {
    // The start of a range of years may leave out its 年: 1990—1995年.
    pattern: [
      `${NOT_AFTER_DIGIT}(?<year>${DIGIT}{4})`,
      `(?=(?:[—–－~～-]{1,2}|[至到])(?<end>${DIGIT}{4})年)`,
    ].join(''),
    parse(match) {
      const year = numberGroup(match, 'year') ?? 0;
      const end = numberGroup(match, 'end') ?? 0;
      const ordered = year >= 1000 && year < end && end <= 2999;
      return ordered && !countsYears(match) ? piece(Rank.year, { year }) : null;
    },
  },
  {
    // Two-digit years such as 98年 leave the century open, so no value.
    pattern: [
      `(?<!${DURATION_BEFORE})`,
      `(?:${NOT_AFTER_DIGIT}(?<digits>${DIGIT}{2})`,
      `|${NOT_AFTER_CN}(?<chinese>${CN_DIGIT}{2}))`,
      `年(?!${DURATION_AFTER})${YEAR_PART}`,
    ].join(''),
    parse(match) {
      const chinese = group(match, 'chinese');
      const text = chinese ?? group(match, 'digits') ?? '';
      const [tens = 0, ones = 0] = [...text].map(parseNumeral);
      // 三四年 and 七八年 mean 'three or four years', not 1934 or 1978.
      if (chinese !== undefined && ones === tens + 1) return null;
      // Round numbers are far more often durations (干了10年) than years.
      if (ones === 0 && !isFollowedBy(match, MONTH_AHEAD)) return null;
      return piece(Rank.year, { unresolved: true });
    },
  },
  {
    // People's Daily reads 近年来 as an idiom and 同年 as an adverb, not times.
    pattern: `大?[前后]年${RELATIVE_YEAR_PART}|[今去明当往]年${RELATIVE_YEAR_PART}|近年(?!来)`,
    parse(match) {
      // 投产后年产值 is 投产后 + 年产值: the 后 closes 'after going into
      // production' and the 年 starts an annual figure. NOTE: any Chinese
      // character before 后 counts, so 预计后年产值 loses its 后年 too.
      const before = match.input.slice(0, match.index);
      if (
        match[0] === '后年' &&
        /\p{Script=Han}$/u.test(before) &&
        isFollowedBy(match, ANNUAL_FIGURE_AHEAD)
      ) {
        return null;
      }
      // 投产后年底 is 'at the end of the year after going into production',
      // where 预计后年底 is the end of the year after next.
      if (/^后年[底初末]/u.test(match[0]) && COMPLETED_BEFORE.test(before)) {
        return null;
      }
      return piece(Rank.year, { unresolved: true });
    },
  },
];

/**
 * Rules for centuries and decades.
 * NOTE: People's Daily does not tag numbered centuries and decades as
 * times (２０/m 世纪/n, ８０/m 年代/n), so these spans count as false
 * positives when scoring against it.
 */
export const ERA_RULES: Rule[] = [
  {
    pattern: [
      '(?<era>公元前)?',
      // 下一世纪 is 'the next century', not the 1st.
      `(?<century>${SMALL_NUMBER}|(?<![上下这本])${NOT_AFTER_CN}[一二三四五六七八九十]{1,3})`,
      '世纪',
    ].join(''),
    parse(match) {
      const century = numberGroup(match, 'century') ?? 0;
      if (century === 0) return null;
      if (group(match, 'era') !== undefined) {
        return piece(Rank.century, { unresolved: true });
      }
      return piece(Rank.century, { century });
    },
  },
  wordRule('[上本这下]个?世纪', Rank.century, { unresolved: true }),
  {
    pattern: [
      `(?<decade>${NOT_AFTER_DIGIT}(?:[12１２]${DIGIT})?${DIGIT}{2}`,
      `|${NOT_AFTER_CN}(?:[一二三四五六七八九]?十|${CN_DIGIT}{2}))`,
      '年代',
    ].join(''),
    parse(match) {
      const text = group(match, 'decade') ?? '';
      const decade = parseNumeral(text);
      if (decade % 10 !== 0) return null;
      if (text.length === 4) {
        return piece(Rank.decade, { decadeStart: decade });
      }
      return piece(Rank.decade, { decadeTens: decade });
    },
  },
];

/** Rules for seasons, months, weeks, festivals and days. */
export const DATE_RULES: Rule[] = [
  // 夏秋季节 is 'summer and autumn'.
  wordRule('[春夏秋冬][天季](?!节)', Rank.season),
  {
    // 元月 is January; 单元 and 纪元 end other words. 十月革命 (the October
    // Revolution) and 二月河 (a writer) are names.
    pattern: `(?<month>${SMALL_NUMBER}|${CN_MONTH}|(?<![单纪公])元)月(?!革命|河)${MONTH_PART}`,
    parse(match) {
      const text = group(match, 'month');
      const month = text === '元' ? 1 : (numberGroup(match, 'month') ?? 0);
      return month >= 1 && month <= 12 ? piece(Rank.month, { month }) : null;
    },
  },
  {
    // A lunar month and day with a year give a date (1998年正月初一).
    pattern: `(?<lunar>[正腊])月${MONTH_PART}`,
    parse: (match) =>
      piece(Rank.month, {
        lunarMonth: group(match, 'lunar') === '正' ? 1 : 12,
      }),
  },
  {
    // 农历 makes a numbered month lunar (2018年农历八月十五), and so does
    // 闰, the leap month (2023年闰二月初一). 冬月 is the 11th lunar month.
    pattern: [
      '(?:(?:农历|阴历)(?<leap>闰)?|(?<leapOnly>闰))',
      `(?<month>正|${CN_MONTH}|${SMALL_NUMBER})月`,
      '|(?:农历|阴历)?(?<winter>冬)月',
    ].join(''),
    parse(match) {
      const text = group(match, 'month');
      const month =
        group(match, 'winter') !== undefined
          ? 11
          : text === '正'
            ? 1
            : (numberGroup(match, 'month') ?? 0);
      if (month < 1 || month > 12) return null;
      const leap =
        group(match, 'leap') !== undefined ||
        group(match, 'leapOnly') !== undefined;
      return piece(Rank.month, {
        lunarMonth: month,
        ...(leap ? { lunarLeap: true } : {}),
      });
    },
  },
  {
    // 当天 after a festival or a date is that day (2023年端午节当天), and
    // alone a day the text does not name.
    pattern: '当[天日]',
    parse: (_match, prev) =>
      piece(Rank.day, prev === undefined ? { unresolved: true } : {}),
  },
  wordRule(`(?:[本当同]|[上下]个?|这个)月${RELATIVE_MONTH_PART}`, Rank.month, {
    unresolved: true,
  }),
  {
    // 上周一次 is 'once last week', so a weekday must not start a count.
    pattern: [
      '[上下本这]个?',
      '(?:周(?:(?<day>[一二三四五六日末])(?![次遍回])',
      '|(?![期边围年岁刊到全密游长]))',
      '|(?:星期|礼拜)(?<weekday>[一二三四五六日天])?)',
    ].join(''),
    parse(match) {
      const named = group(match, 'day') ?? group(match, 'weekday');
      const rank = named === undefined ? Rank.week : Rank.weekday;
      return piece(rank, { unresolved: true });
    },
  },
  {
    // 新年伊始 is an idiom in People's Daily.
    pattern: `(?!新年伊始)(?:${alternation(FESTIVALS)})`,
    // A clock time after 除夕夜 or 平安夜 is in the evening (除夕夜8点).
    parse: (match) =>
      piece(Rank.week, {
        festival: FESTIVAL_NAMES[match[0]] ?? match[0],
        ...(match[0].endsWith('夜') ? { period: 'night' as const } : {}),
      }),
  },
  {
    // After a year, or after a festival that had one (2024年中秋、国庆).
    pattern: `(?:${alternation(Object.keys(SHORT_FESTIVALS))})(?![节日])`,
    parse: (match, prev, context) =>
      prev?.rank === Rank.year ||
      (prev === undefined && context?.fields.festival !== undefined)
        ? piece(Rank.week, { festival: SHORT_FESTIVALS[match[0]] })
        : null,
  },
  {
    // 大年初一 to 大年初十 are the first days of the lunar year.
    pattern: '大年初(?<day>[一二三四五六七八九十])',
    parse: (match) =>
      piece(Rank.day, {
        lunarMonth: 1,
        lunarDay: parseNumeral(group(match, 'day') ?? ''),
      }),
  },
  {
    pattern: `(?<day>${SMALL_NUMBER}|${CN_DAY})(?<unit>[日号])`,
    parse(match, prev, context) {
      const day = numberGroup(match, 'day') ?? 0;
      if (day < 1 || day > 31) return null;
      // Without a month, 3号 is more often a number (3号楼) and 一日 a
      // duration, so only ASCII or full-width digits + 日 stand alone. The
      // end of a range of days (5日至7号, 5日至十日) has the day before it.
      const rangeEnd =
        context?.rank === Rank.day &&
        (group(match, 'unit') === '日' || isFollowedBy(match, DATE_END_AHEAD));
      if (prev?.rank !== Rank.month && !rangeEnd) {
        const digits = /^[0-9０-９]/u.test(group(match, 'day') ?? '');
        if (!digits || group(match, 'unit') === '号') return null;
        if (isFollowedBy(match, YEN_AHEAD)) return null;
        // 15日内 and 7日无理由退货 count days.
        if (isFollowedBy(match, DAY_COUNT_AFTER)) return null;
        // The numbered month right before was out of range (13月5日), so the
        // day is part of that non-date, not a time of its own.
        const preceding = match.input.slice(
          Math.max(0, match.index - 2),
          match.index,
        );
        if (/[0-9０-９]月$/u.test(preceding)) {
          return null;
        }
      }
      return piece(Rank.day, { day });
    },
  },
  {
    // Days of a lunar month, written without 日: 初一 to 初十, 十一 to 三十
    // (廿 is 二十). Only 初 days may follow a month in numerals (三月初三),
    // and such a date has no value: the month may be lunar.
    pattern: `初[一二三四五六七八九十]|${NOT_AFTER_CN}(?:十[一二三四五六七八九]|二十[一二三四五六七八九]?|三十|廿[一二三四五六七八九])`,
    parse(match, prev, context) {
      const text = match[0];
      // The end of a range of lunar days (初一至初七) has the day before it.
      if (prev === undefined && context?.fields.lunarDay !== undefined) {
        return piece(Rank.day, { lunarDay: lunarDayNumber(text) });
      }
      if (prev?.rank !== Rank.month) return null;
      if (prev.fields.lunarMonth === undefined) {
        return text.startsWith('初')
          ? piece(Rank.day, { unresolved: true })
          : null;
      }
      return piece(Rank.day, { lunarDay: lunarDayNumber(text) });
    },
  },
  {
    pattern: [
      // A letter before the year makes it a version or a code (v2024.3.5).
      String.raw`(?<![0-9０-９.．/／\-－A-Za-zＡ-Ｚａ-ｚ])`,
      `(?<year>[12１２]${DIGIT}{3})`,
      `(?:[-－](?<m1>${DIGIT}{1,2})[-－](?<d1>${DIGIT}{1,2})`,
      `|[/／](?<m2>${DIGIT}{1,2})[/／](?<d2>${DIGIT}{1,2})`,
      String.raw`|[.．](?<m3>${DIGIT}{1,2})[.．](?<d3>${DIGIT}{1,2}))`,
      String.raw`(?![0-9０-９]|[\-－/／.．][0-9０-９])`,
    ].join(''),
    parse(match, prev) {
      if (prev !== undefined) return null;
      const month =
        numberGroup(match, 'm1') ??
        numberGroup(match, 'm2') ??
        numberGroup(match, 'm3') ??
        0;
      const day =
        numberGroup(match, 'd1') ??
        numberGroup(match, 'd2') ??
        numberGroup(match, 'd3') ??
        0;
      // Out-of-range parts mean a version or a code, not a date.
      if (month < 1 || month > 12 || day < 1 || day > 31) return null;
      const year = numberGroup(match, 'year');
      return piece(Rank.day, { year, month, day });
    },
  },
  wordRule(RELATIVE_DAY.join('|'), Rank.day, { unresolved: true }),
  {
    pattern:
      '周(?<short>[一二三四五六日末])(?![次遍回期])|(?:星期|礼拜)(?<long>[一二三四五六日天])',
    parse(match) {
      const name = group(match, 'short') ?? group(match, 'long') ?? '';
      // 1 for Monday to 7 for Sunday, as ISO 8601 numbers them.
      const weekday = '一二三四五六日天'.indexOf(name) + 1;
      return piece(
        Rank.weekday,
        weekday > 0 ? { weekday: Math.min(weekday, 7) } : {},
      );
    },
  },
];

/** Rules for parts of the day and clock times. */
export const TIME_RULES: Rule[] = [
  {
    // 白天鹅 is a swan.
    pattern: `(?:${alternation(PERIODS.keys())})(?<!白天(?=鹅))`,
    parse: (match) => piece(Rank.period, { period: PERIODS.get(match[0]) }),
  },
  {
    // Single-character parts of the day count only between a day or weekday
    // and a clock time (5日晚8点, 星期四晚8点). People's Daily leaves them out
    // of the time otherwise (31日/t 晚/Tg).
    pattern: `(?:晚(?![会饭宴报餐年辈期点霞安])|晨|夜)(?=${DIGIT}|${CN_HOUR}[点时])`,
    parse(match, prev, context) {
      const before = prev ?? context;
      if (before?.rank !== Rank.day && before?.rank !== Rank.weekday) {
        return null;
      }
      const period: Period = match[0] === '晨' ? 'morning' : 'night';
      return piece(Rank.period, { period });
    },
  },
  // 今晚报 is a Tianjin newspaper; 今晚报道 is still 'reported tonight'.
  wordRule('[今昨明当]晚(?!报(?![道告名]))|[今昨]夜', Rank.period, {
    period: 'night',
    unresolved: true,
  }),
  wordRule('今晨|[今明]早', Rank.period, {
    period: 'morning',
    unresolved: true,
  }),
  {
    // 比分为21:15, 以21:15获胜 and the second of 以21:15、21:18 are scores,
    // and +08:00 is a time-zone offset.
    pattern: `(?<![0-9０-９:：.．+＋]|比[分例数]?[为是]?|比分\\p{Script=Han}{0,3}[在为是]|以(?:[0-9０-９]{1,3}[:：][0-9０-９]{1,3}、)?)${COLON_TIME}`,
    parse: (match) => parseColonTime(match),
  },
  {
    // A date and a colon time separated by one space or ISO 8601's T.
    pattern: `[ 　T]${COLON_TIME}`,
    parse: (match, prev) =>
      prev?.rank === Rank.day ? parseColonTime(match) : null,
  },
  {
    pattern: [
      `(?<hour>${SMALL_NUMBER}|${CN_HOUR})[点时]`,
      // 一时半会儿 means 'a short while'.
      '(?:(?<half>半)(?!会)|(?<quarter>[一三13１３]刻)',
      // Not 3点15名 or 9点20辆, where the number counts something.
      `|(?<bareMinute>[0-5０-５]${DIGIT})(?![0-9０-９分秒]|${COUNTED})`,
      `|(?<minute>${DIGIT}{1,2}|${CN_MINUTE})分`,
      `(?:(?<second>${DIGIT}{1,2}|${CN_MINUTE})秒)?`,
      '|(?<exact>[钟整]))?(?<approx>许)?',
    ].join(''),
    parse: parseHourTime,
  },
];

/**
 * Reads 14:30 or 9:05:30. Rejects ratios and scores such as 3:75, whose
 * minutes or seconds exceed 59.
 */
function parseColonTime(match: RegExpExecArray): Piece | null {
  const hour = numberGroup(match, 'hour') ?? 0;
  const minute = numberGroup(match, 'minute') ?? 0;
  const second = numberGroup(match, 'second');
  if (minute > 59 || (second ?? 0) > 59) return null;
  if (hour > 24 || (hour === 24 && minute + (second ?? 0) > 0)) return null;
  // 以21:15获胜 and 3:1战胜 give a result, not a time.
  if (isFollowedBy(match, RESULT_AHEAD)) return null;
  return piece(Rank.clock, { hour, minute, second });
}

/**
 * Reads 9点, 下午三点半, 9时30分15秒 and 9时许.
 *
 * A bare number + 点 or 时 is a clock time only right after a festival, day,
 * weekday or part of the day (上午9点, 明天3点), or as the end of a range after
 * a clock time (9点至11点), because alone it is usually a count (3点建议).
 * So are two-digit minutes without 分 (晚上7点30). Followed by 半, 一刻,
 * 三刻, minutes with 分, 钟, 整 or 许, it is a clock time anywhere.
 */
function parseHourTime(
  match: RegExpExecArray,
  prev: Piece | undefined,
  context?: Piece,
): Piece | null {
  const hour = numberGroup(match, 'hour') ?? 0;
  if (hour > 24) return null;

  const bareMinute = numberGroup(match, 'bareMinute');
  let minute = numberGroup(match, 'minute') ?? bareMinute;
  if (group(match, 'half') !== undefined) minute = 30;
  const quarter = group(match, 'quarter');
  if (quarter !== undefined) {
    minute = /^[一1１]/u.test(quarter) ? 15 : 45;
  }
  const second = numberGroup(match, 'second');
  if ((minute ?? 0) > 59 || (second ?? 0) > 59) return null;

  // Minutes without 分 (7点30) need the same context as a bare hour, since
  // 3点05 may also be a number read aloud.
  const bare =
    (minute === undefined || bareMinute !== undefined) &&
    group(match, 'exact') === undefined &&
    group(match, 'approx') === undefined;
  if (bare) {
    const before = prev ?? context;
    const dated = before !== undefined && before.rank >= Rank.week;
    // 9点至11点 is a span of hours even without a day before it, but 第3点至5点
    // counts points.
    const ranged =
      isFollowedBy(match, HOUR_RANGE_AHEAD) &&
      !match.input.slice(0, match.index).endsWith('第');
    if (!dated && !ranged) return null;
    if (isFollowedBy(match, LITTLE_AHEAD)) return null;
  }
  return piece(Rank.clock, { hour, minute, second });
}
