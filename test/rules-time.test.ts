import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { findTimes, timePlugin } from '../src/rules/time.js';

/** A span as matched text, code-point offsets and value, for comparison. */
interface Found {
  text: string;
  start: number;
  end: number;
  value?: string;
}

function found(
  text: string,
  start: number,
  end: number,
  value?: string,
): Found {
  if (value === undefined) return { text, start, end };
  return { text, start, end, value };
}

function findAll(input: string): Found[] {
  const codePoints = [...input];
  return findTimes(input).map((span) => {
    const text = codePoints.slice(span.start, span.end).join('');
    return found(text, span.start, span.end, span.value);
  });
}

/** Inputs that are one time expression from start to end, with the value. */
const WHOLE: [input: string, value?: string][] = [
  // Years
  ['1998年', '1998'],
  ['１９９８年', '1998'],
  ['一九九八年', '1998'],
  ['二〇二四年', '2024'],
  ['公元2000年', '2000'],
  ['公元前221年', '-0220'],
  ['公元前二二一年', '-0220'],
  ['公元前1年', '0000'],
  ['公元1年', '0001'],
  ['９８年'],
  ['98年'],
  ['九八年'],
  ['1998年度', '1998'],
  ['1998年年底', '1998'],
  ['去年年底'],
  ['去年底'],
  ['今年年初'],
  ['0618年3月', '0618-03'],
  ['3000年3月5日', '3000-03-05'],
  ['9999年国庆节', '9999-10-01'],
  ['三〇〇〇年三月', '3000-03'],
  ['今年上半年'],
  // Months and dates
  ['1998年3月', '1998-03'],
  ['1998年3月5日', '1998-03-05'],
  ['１９９８年３月５日', '1998-03-05'],
  ['一九九八年三月五日', '1998-03-05'],
  ['1998年12月31日', '1998-12-31'],
  ['2024年2月29日', '2024-02-29'],
  ['3月5日'],
  ['三月五日'],
  ['十二月三十一日'],
  ['3月5号'],
  ['３月５号'],
  ['三月五号'],
  ['5日'],
  ['５日'],
  ['3月份'],
  ['一月份'],
  ['12月下旬'],
  ['98年3月'],
  ['元月'],
  ['1998年元月', '1998-01'],
  ['１９９８年元月上旬', '1998-01'],
  ['元月３日'],
  ['80年3月'],
  ['正月初一'],
  ['1998年正月初一', '1998-01-28'],
  ['2024年正月十五', '2024-02-24'],
  ['2024年正月十五日晚上8点', '2024-02-24T20:00'],
  ['2024年腊月廿三', '2025-01-22'],
  ['2023年腊月三十', '2024-02-09'],
  ['2024年腊月三十'],
  ['2024年腊月'],
  // Years in which ICU 78's Chinese calendar is a day off the almanac, so
  // a month may also gain or lose its 30th day
  ['1998年腊月廿三', '1999-02-08'],
  ['1954年正月初一', '1954-02-03'],
  ['2026年腊月三十'],
  ['2029年腊月三十', '2030-02-02'],
  ['2070年正月三十'],
  ['1998年三月初三'],
  ['2024-03-05', '2024-03-05'],
  ['2024/3/5', '2024-03-05'],
  ['2024.03.05', '2024-03-05'],
  ['２０２４-０３-０５', '2024-03-05'],
  // Invalid calendar dates are matched without a value
  ['2月30日'],
  ['1998年2月30日'],
  ['2023-02-29'],
  // Centuries and decades
  ['20世纪', '19'],
  ['二十世纪', '19'],
  ['21世纪', '20'],
  ['上世纪'],
  ['九十年代'],
  ['九〇年代'],
  ['90年代'],
  ['1990年代', '199'],
  ['20世纪90年代', '199'],
  ['二十世纪九十年代', '199'],
  ['上世纪90年代'],
  // Times of day
  ['上午9点'],
  ['下午三点半'],
  ['晚上8点15分'],
  ['凌晨两点'],
  ['凌晨零点'],
  ['中午'],
  ['傍晚'],
  ['早上'],
  ['晚上'],
  ['下午'],
  ['14:30'],
  ['9:05:30'],
  ['24:00'],
  ['下午3:30'],
  ['9时30分'],
  ['9点5分30秒'],
  ['十时三十分'],
  ['三点一刻'],
  ['八点整'],
  ['3点钟'],
  ['3点半'],
  ['9时许'],
  // Relative words
  ['今天'],
  ['昨天'],
  ['前天'],
  ['明天'],
  ['后天'],
  ['今年'],
  ['去年'],
  ['前年'],
  ['明年'],
  ['上周'],
  ['下周'],
  ['本周'],
  ['本周末'],
  ['上个月'],
  ['下个月'],
  ['本月'],
  ['近日'],
  ['目前'],
  ['当天'],
  ['次日'],
  ['明天早上'],
  ['今天下午'],
  ['明天3点'],
  ['今晚8点'],
  ['周一'],
  ['周日'],
  ['周末'],
  ['星期一'],
  ['星期日'],
  ['星期天'],
  ['礼拜一'],
  ['上星期三'],
  ['春天'],
  // Festivals
  ['春节'],
  ['元旦'],
  ['元宵节'],
  ['清明节'],
  ['端午节'],
  ['中秋节'],
  ['国庆节'],
  ['除夕'],
  ['除夕夜'],
  ['圣诞节'],
  ['劳动节'],
  ['重阳节'],
  ['七夕'],
  ['今年春节'],
  // Festivals with a year, dated by the Chinese calendar or a fixed day
  ['2024年春节', '2024-02-10'],
  ['2023年春节', '2023-01-22'],
  ['1998年春节', '1998-01-28'],
  ['二〇二四年中秋节', '2024-09-17'],
  ['2024年中秋节', '2024-09-17'],
  ['2024年端午节', '2024-06-10'],
  ['2024年除夕', '2024-02-09'],
  ['2024年除夕夜', '2024-02-09'],
  ['2023年除夕', '2023-01-21'],
  ['2024年元宵节', '2024-02-24'],
  ['2024年七夕', '2024-08-10'],
  ['1949年中秋节', '1949-10-06'],
  // Years in which ICU 78's Chinese calendar is a day or a month off
  ['2027年春节', '2027-02-06'],
  ['2030年春节', '2030-02-03'],
  ['1954年春节', '1954-02-03'],
  ['1987年七夕', '1987-08-30'],
  ['2012年七夕', '2012-08-23'],
  ['2024年重阳节', '2024-10-11'],
  ['2024年元旦', '2024-01-01'],
  ['2024年国庆节', '2024-10-01'],
  ['2024年劳动节', '2024-05-01'],
  ['2024年五一劳动节', '2024-05-01'],
  ['2024年2月春节', '2024-02-10'],
  // Short names count as festivals only after a year
  ['2024年中秋', '2024-09-17'],
  ['2024年端午', '2024-06-10'],
  ['2024年国庆', '2024-10-01'],
  ['2024年五一', '2024-05-01'],
  ['2024年清明', '2024'],
  ['今年中秋'],
  ['9999年中秋', '9999'],
  // A festival without a fixed date, before 1900, or after another month
  ['2024年清明节', '2024'],
  ['1850年春节', '1850'],
  ['2024年3月春节', '2024-03'],
  // Combinations
  ['1998年3月5日上午9点', '1998-03-05T09:00'],
  ['1998年3月5日下午三点半', '1998-03-05T15:30'],
  ['1998年3月5日晚上8点15分', '1998-03-05T20:15'],
  ['1998年3月5日中午1点', '1998-03-05T13:00'],
  ['1998年3月5日9点5分30秒', '1998-03-05T09:05:30'],
  ['1998年3月5日14:30', '1998-03-05T14:30'],
  ['1998年3月5日 14:30', '1998-03-05T14:30'],
  ['2024-03-05 14:30', '2024-03-05T14:30'],
  ['2024-03-05T09:05:30', '2024-03-05T09:05:30'],
  ['1998年3月5日上午', '1998-03-05'],
  ['1998年3月5日晚8点', '1998-03-05T20:00'],
  ['本月底'],
  ['1998年3月5日星期四', '1998-03-05'],
  ['2024年春节上午', '2024-02-10'],
  ['2024年除夕晚上8点', '2024-02-09T20:00'],
  ['1998年春天', '1998'],
  ['去年12月'],
  ['今年3月5日'],
  ['3月5日星期四上午9点'],
  // Traditional characters
  ['1998年3月5日上午9點', '1998-03-05T09:00'],
  ['2024年春節', '2024-02-10'],
  ['2024年中秋節', '2024-09-17'],
  // Times the part of the day contradicts or leaves on an unclear day
  ['1998年3月5日上午13点'],
  ['1998年3月5日晚上12点'],
  ['1998年3月5日晚上1点'],
  ['2024年3月5日凌晨11点'],
  ['2024年3月5日傍晚11点'],
  ['2024年3月5日凌晨2点', '2024-03-05T02:00'],
  ['2024年3月5日傍晚6点', '2024-03-05T18:00'],
  // A weekday that is not the date's
  ['2024年3月5日星期五'],
  ['2024年3月5日星期二', '2024-03-05'],
  ['2024年3月10日周日', '2024-03-10'],
  // Minutes without 分, quarters in digits, evenings of festivals
  ['2024年3月5日晚上7点30', '2024-03-05T19:30'],
  ['2024年3月5日下午3点05', '2024-03-05T15:05'],
  ['2024年3月5日9点3刻', '2024-03-05T09:45'],
  ['2024年除夕夜8点', '2024-02-09T20:00'],
  ['2024年除夕夜12点'],
  // Other ways to write numerals, dates and festivals
  ['二○○三年十月十五日上午九时', '2003-10-15T09:00'],
  ['1998年12月廿五日', '1998-12-25'],
  ['1998年12月卅一日', '1998-12-31'],
  ['２０２４－０３－０５', '2024-03-05'],
  ['２０２４／３／５', '2024-03-05'],
  ['２０２４年３月５日　１４：３０', '2024-03-05T14:30'],
  ['2024年七夕节', '2024-08-10'],
  ['2024年大年三十', '2024-02-09'],
  ['2024年大年初二', '2024-02-11'],
  ['2024年腊月二十三', '2025-01-22'],
  ['2024年正月二十一', '2024-03-01'],
  ['2018年农历八月十五', '2018-09-24'],
  ['2023年闰二月初一', '2023-03-22'],
  ['2023年农历闰二月十五', '2023-04-05'],
  ['2024年闰二月初一'],
  ['2024年冬月初一', '2024-12-01'],
  ['2023年端午节当天', '2023-06-22'],
];

/** Inputs with no time expression. */
const NONE: [input: string, reason: string][] = [
  ['3个', 'plain count'],
  ['一天', 'duration'],
  ['三天', 'duration'],
  ['时间', 'the word for time'],
  ['3点建议', 'bare number + 点 without context'],
  ['十二点', 'bare number + 点 without context'],
  ['一点儿', 'a little'],
  ['3:75', 'minutes above 59'],
  ['1:2', 'ratio'],
  ['9:05:75', 'seconds above 59'],
  ['25:00', 'hour above 24'],
  ['13月', 'month above 12'],
  ['13月5日', 'day after a month above 12'],
  ['32日', 'day above 31'],
  ['125日', 'digits before the day'],
  ['1.5日', 'decimal number'],
  ['3号楼', '号 without a month'],
  ['一日三餐', 'Chinese day without a month'],
  ['100日元', 'yen'],
  ['5000年历史', 'four-digit number outside 1000 to 2999'],
  ['五〇〇〇年历史', 'Chinese four-digit number outside 1000 to 2999'],
  ['0618年', 'four-digit number outside 1000 to 2999 without a month'],
  ['干了10年', 'round two-digit number'],
  ['近20年', 'duration cue before'],
  ['98年来', 'duration cue after'],
  ['三四年', 'approximate Chinese count'],
  ['这两年', 'count with 两'],
  ['2024.13.05', 'month above 12'],
  ['v1.2.3', 'version number'],
  ['每周一次', 'weekday that starts a count'],
  ['以下周期', '周期 is a cycle'],
  ['出现在', '现在 inside a word'],
  ['节日前夕', '日前 inside a phrase'],
  ['三天前天气很好', '前天 before 天气'],
  ['3月亮', '月亮 is the moon'],
  ['星期', 'week'],
  ['中秋', 'short festival name without a year'],
  ['近年来', "an idiom in People's Daily"],
  ['同年', "an adverb in People's Daily"],
  ['新年伊始', "an idiom in People's Daily"],
  ['政治清明', '清明 meaning clear'],
  ['吃元宵', '元宵 the dumpling'],
  ['第三单元月考', '元月 inside 单元月考'],
  ['《今晚报》', 'the newspaper 今晚报'],
  ['据光明日报报道', 'the newspaper 光明日报'],
  ['他在今日头条发布视频', 'the app 今日头条'],
  ['该项目投产后年产值可达5亿元', '投产后 then the annual 年产值'],
  ['建成后年均增长15%', '建成后 then the annual 年均'],
  ['中国队以21:15获胜', 'a score before 获胜'],
  ['福建省财政已连续１３年实现收支平衡', 'a count of years after 连续'],
  ['部队持续29年安全无事故', 'a count of years after 持续'],
  ['到绥东抗日前线', '抗日前线, the front against Japan'],
  ['参加苏联纪念十月革命节的活动', '十月革命, the October Revolution'],
  ['该厂投产后年底完成改造', '投产后 then 年底'],
  ['编号1234-5678年', 'a range that ends in no year'],
  ['第3点至5点建议', 'points 3 to 5 of a list'],
  ['这座古城有1000—2000年历史', 'a range of years that counts them'],
  ['这批文物距今约1200～1500年', 'a range of years ago'],
  ['这种树能活1000—2000年', 'a range of years a tree lives'],
  ['这些遗址距今2000年', 'years ago after 距今'],
  ['中国队以21:15、21:18获胜', 'a list of scores after 以'],
  ['比分定格在21:15', 'a score after 比分'],
  ['他坚持15年拥军', 'a count of years after 坚持'],
  ['日本经济在平稳发展15年之后', 'a count of years before 之后'],
  ['姊妹36年未见面', 'a count of years before 未'],
  ['仅仅12年时间', 'a count of years before 时间'],
  ['这是第二十六次日本国际贸易促进协会访华团', '次 then 日本'],
  ['他多次日夜奋战', '多次 then 日夜'],
  ['卡拉辛同日本外务省官员会谈', '同 then 日本'],
  ['白天鹅', 'a swan'],
  ['后天下之乐而乐', '后 then 天下'],
  ['二月河的小说', 'the writer 二月河'],
  ['最终以2:0击败对手', 'a score before 击败'],
  ['在项目前期', '目前 across 项目 and 前期'],
  ['临近换届时', '届时 across 换届 and 时'],
  ['截止日前', 'before the deadline day'],
  ['纪念日前夕', 'the eve of a memorial day'],
  ['我一时半会儿想不起来', "一时半会儿, 'a short while'"],
  ['歌曲《明天会更好》', 'a relative word in a title'],
  ['《去年夏天》', 'a relative word in a title'],
  ['上半场比分为21:15', 'a score'],
  ['比例为1:12', 'a ratio'],
  ['新版固件v2024.3.5', 'a version number'],
  ['商品编号A2024-03-05', 'a product code'],
  ['至今有２８００年历史', 'a four-digit duration'],
  ['近2000年', 'a four-digit duration'],
  ['约1500年', 'a four-digit duration'],
  ['下一世纪', 'the next century'],
  ['每周一期', 'a weekly issue'],
  ['适当时候', '当时 across 适当 and 时候'],
  ['浮现在', '现在 across 浮现 and 在'],
  ['夏秋季节', 'summer and autumn'],
  ['有期徒刑12年', 'a sentence in years'],
  ['时隔16年', 'a gap in years'],
  ['15日内', 'a count of days'],
  ['7日无理由退货', 'a count of days'],
  ['3点05', 'minutes without 分 and no context'],
  ['据今晚报报道', 'the newspaper 今晚报 without title marks'],
];

describe('findTimes', () => {
  describe('when the input is one expression', () => {
    for (const [input, value] of WHOLE) {
      it(`matches ${input}`, () => {
        const expected = found(input, 0, [...input].length, value);
        assert.deepEqual(findAll(input), [expected]);
      });
    }
  });

  describe('when the input has no time', () => {
    for (const [input, reason] of NONE) {
      it(`ignores ${input} (${reason})`, () => {
        assert.deepEqual(findAll(input), []);
      });
    }
  });

  describe('when times sit inside a sentence', () => {
    it('finds each maximal expression', () => {
      const input = '他于1998年3月5日上午9点到达北京，次日下午离开。';
      assert.deepEqual(findAll(input), [
        found('1998年3月5日上午9点', 2, 15, '1998-03-05T09:00'),
        found('次日下午', 20, 24),
      ]);
    });

    it('stops before trailing words', () => {
      assert.deepEqual(findAll('新华社北京３月５日电'), [
        found('３月５日', 5, 9),
      ]);
    });

    it('checks a bracketed weekday against the date', () => {
      assert.deepEqual(findAll('1998年3月5日（星期四）'), [
        found('1998年3月5日', 0, 9, '1998-03-05'),
        found('星期四', 10, 13, '1998-03-05'),
      ]);
      assert.deepEqual(findAll('1998年3月5日上午9点(周四)'), [
        found('1998年3月5日上午9点', 0, 13, '1998-03-05T09:00'),
        found('周四', 14, 16, '1998-03-05'),
      ]);
      assert.deepEqual(findAll('1998年3月5日（星期五）'), [
        found('1998年3月5日', 0, 9),
        found('星期五', 10, 13),
      ]);
      assert.deepEqual(findAll('3月5日（星期四）'), [
        found('3月5日', 0, 4),
        found('星期四', 5, 8),
      ]);
    });

    it('continues the date past a bracketed weekday', () => {
      assert.deepEqual(findAll('1998年3月5日（星期四）上午9点，会议开幕。'), [
        found('1998年3月5日', 0, 9, '1998-03-05'),
        found('星期四', 10, 13, '1998-03-05'),
        found('上午9点', 14, 18, '1998-03-05T09:00'),
      ]);
      assert.deepEqual(findAll('1998年3月5日(星期四)9时开幕'), [
        found('1998年3月5日', 0, 9, '1998-03-05'),
        found('星期四', 10, 13, '1998-03-05'),
        found('9时', 14, 16, '1998-03-05T09:00'),
      ]);
      assert.deepEqual(findAll('1998年3月5日（星期四）晚8点'), [
        found('1998年3月5日', 0, 9, '1998-03-05'),
        found('星期四', 10, 13, '1998-03-05'),
        found('晚8点', 14, 17, '1998-03-05T20:00'),
      ]);
      assert.deepEqual(findAll('1998年3月5日（星期四）至7日（星期六）'), [
        found('1998年3月5日', 0, 9, '1998-03-05'),
        found('星期四', 10, 13, '1998-03-05'),
        found('7日', 15, 17, '1998-03-07'),
        found('星期六', 18, 21, '1998-03-07'),
      ]);
      assert.deepEqual(findAll('1998年3月5日（星期五）上午9点'), [
        found('1998年3月5日', 0, 9),
        found('星期五', 10, 13),
        found('上午9点', 14, 18),
      ]);
    });

    it('joins 晚 after a weekday to the clock time', () => {
      assert.deepEqual(findAll('他1998年3月5日星期四晚8点到达'), [
        found('1998年3月5日星期四晚8点', 1, 16, '1998-03-05T20:00'),
      ]);
    });

    it('dates 次日 range ends a day later', () => {
      assert.deepEqual(findAll('1998年3月5日晚11点半至次日凌晨1点'), [
        found('1998年3月5日晚11点半', 0, 14, '1998-03-05T23:30'),
        found('次日凌晨1点', 15, 21, '1998-03-06T01:00'),
      ]);
      assert.deepEqual(findAll('1998年2月28日至翌日'), [
        found('1998年2月28日', 0, 10, '1998-02-28'),
        found('翌日', 11, 13, '1998-03-01'),
      ]);
    });

    it('still finds real times nearby', () => {
      assert.deepEqual(findAll('会议时间为9:30、14:30'), [
        found('9:30', 5, 9),
        found('14:30', 10, 15),
      ]);
      assert.deepEqual(findAll('会议的次日'), [found('次日', 3, 5)]);
      assert.deepEqual(findAll('白天很热'), [found('白天', 0, 2)]);
      assert.deepEqual(findAll('1990—1995年之间'), [
        found('1990', 0, 4, '1990'),
        found('1995年', 5, 10, '1995'),
      ]);
    });

    it('finds year ranges without the first 年', () => {
      assert.deepEqual(findAll('他在1990—1995年间工作'), [
        found('1990', 2, 6, '1990'),
        found('1995年', 7, 12, '1995'),
      ]);
    });

    it('finds a range of bare hours', () => {
      assert.deepEqual(findAll('会议于9时至11时举行'), [
        found('9时', 3, 5),
        found('11时', 6, 9),
      ]);
    });

    it('keeps 后年底 after 预计', () => {
      assert.deepEqual(findAll('预计后年底建成'), [found('后年底', 2, 5)]);
    });

    it('keeps 后年 before verbs and alone', () => {
      assert.deepEqual(findAll('预计后年投产'), [found('后年', 2, 4)]);
      assert.deepEqual(findAll('后年产值将翻番'), [found('后年', 0, 2)]);
    });

    it('keeps 上周 apart from 一次', () => {
      assert.deepEqual(findAll('上周一次'), [found('上周', 0, 2)]);
    });

    it('reads 今晚报道 as tonight, not the newspaper', () => {
      assert.deepEqual(findAll('央视今晚报道'), [found('今晚', 2, 4)]);
    });

    it('drops 一点 meaning a little', () => {
      assert.deepEqual(findAll('今天一点都不冷'), [found('今天', 0, 2)]);
    });

    it('leaves out 初, 底, 末 and 晚', () => {
      assert.deepEqual(findAll('1998年底'), [found('1998年', 0, 5, '1998')]);
      assert.deepEqual(findAll('7月初'), [found('7月', 0, 2)]);
      assert.deepEqual(findAll('20世纪末'), [found('20世纪', 0, 4, '19')]);
      assert.deepEqual(findAll('本世纪末'), [found('本世纪', 0, 3)]);
      assert.deepEqual(findAll('九十年代初'), [found('九十年代', 0, 4)]);
      assert.deepEqual(findAll('1998年3月5日晚，'), [
        found('1998年3月5日', 0, 9, '1998-03-05'),
      ]);
    });

    it('splits times joined by 至', () => {
      assert.deepEqual(findAll('3月5日至7日'), [
        found('3月5日', 0, 4),
        found('7日', 5, 7),
      ]);
    });

    it('dates the end of a range by its start', () => {
      assert.deepEqual(findAll('1998年3月5日至7日'), [
        found('1998年3月5日', 0, 9, '1998-03-05'),
        found('7日', 10, 12, '1998-03-07'),
      ]);
      assert.deepEqual(findAll('2024年3月30日到4月2日'), [
        found('2024年3月30日', 0, 10, '2024-03-30'),
        found('4月2日', 11, 15, '2024-04-02'),
      ]);
    });

    it('dates each item of a list by the first', () => {
      assert.deepEqual(findAll('1998年3月5日、6日和7日'), [
        found('1998年3月5日', 0, 9, '1998-03-05'),
        found('6日', 10, 12, '1998-03-06'),
        found('7日', 13, 15, '1998-03-07'),
      ]);
    });

    it('keeps the part of the day for the end of a range', () => {
      assert.deepEqual(findAll('1998年3月5日下午3点至5点半'), [
        found('1998年3月5日下午3点', 0, 13, '1998-03-05T15:00'),
        found('5点半', 14, 17, '1998-03-05T17:30'),
      ]);
    });

    it('keeps a same-rank end as is', () => {
      assert.deepEqual(findAll('1998年至2000年'), [
        found('1998年', 0, 5, '1998'),
        found('2000年', 6, 11, '2000'),
      ]);
    });

    it('moves a range end into the next year', () => {
      assert.deepEqual(findAll('2024年12月30日至1月3日'), [
        found('2024年12月30日', 0, 11, '2024-12-30'),
        found('1月3日', 12, 16, '2025-01-03'),
      ]);
    });

    it('moves a range end into the next day', () => {
      assert.deepEqual(findAll('1998年3月5日晚8点至凌晨2点'), [
        found('1998年3月5日晚8点', 0, 12, '1998-03-05T20:00'),
        found('凌晨2点', 13, 17, '1998-03-06T02:00'),
      ]);
      assert.deepEqual(findAll('2024年3月5日22:00至2:00'), [
        found('2024年3月5日22:00', 0, 14, '2024-03-05T22:00'),
        found('2:00', 15, 19, '2024-03-06T02:00'),
      ]);
    });

    it('moves an hour before dawn after a night start to the next day', () => {
      assert.deepEqual(findAll('2024年12月31日晚11点至1点'), [
        found('2024年12月31日晚11点', 0, 15, '2024-12-31T23:00'),
        found('1点', 16, 18, '2025-01-01T01:00'),
      ]);
    });

    it('reads bare hours and 号 days as range ends', () => {
      assert.deepEqual(findAll('2024年3月5日上午9点至11点'), [
        found('2024年3月5日上午9点', 0, 13, '2024-03-05T09:00'),
        found('11点', 14, 17, '2024-03-05T11:00'),
      ]);
      assert.deepEqual(findAll('1998年3月5日到7号'), [
        found('1998年3月5日', 0, 9, '1998-03-05'),
        found('7号', 10, 12, '1998-03-07'),
      ]);
      assert.deepEqual(findAll('1998年3月5日至十日'), [
        found('1998年3月5日', 0, 9, '1998-03-05'),
        found('十日', 10, 12, '1998-03-10'),
      ]);
      assert.deepEqual(findAll('2024年正月初一至初七'), [
        found('2024年正月初一', 0, 9, '2024-02-10'),
        found('初七', 10, 12, '2024-02-16'),
      ]);
    });

    it('keeps a year after 有 or before 左右 a year', () => {
      assert.deepEqual(findAll('只有1998年3月5日'), [
        found('1998年3月5日', 2, 11, '1998-03-05'),
      ]);
      assert.deepEqual(findAll('1370年左右'), [found('1370年', 0, 5, '1370')]);
      assert.deepEqual(findAll('临近1997年底'), [
        found('1997年', 2, 7, '1997'),
      ]);
      assert.deepEqual(findAll('这是1997年历史题材'), [
        found('1997年', 2, 7, '1997'),
      ]);
    });

    it('keeps the year of a list that goes back in time', () => {
      assert.deepEqual(findAll('2024年10月1日、5月1日'), [
        found('2024年10月1日', 0, 10, '2024-10-01'),
        found('5月1日', 11, 15, '2024-05-01'),
      ]);
      assert.deepEqual(findAll('1997年和1987年'), [
        found('1997年', 0, 5, '1997'),
        found('1987年', 6, 11, '1987'),
      ]);
    });

    it('reads 号 before a noun after a range joiner as a number', () => {
      assert.deepEqual(findAll('3月5日到7号线'), [found('3月5日', 0, 4)]);
    });

    it('leaves a count after a clock time out of its minutes', () => {
      assert.deepEqual(findAll('下午3点15名代表'), [found('下午3点', 0, 4)]);
      assert.deepEqual(findAll('下午3点60开会'), [found('下午3点', 0, 4)]);
    });

    it('continues a short festival name after a festival with a year', () => {
      assert.deepEqual(findAll('2024年中秋、国庆假期'), [
        found('2024年中秋', 0, 7, '2024-09-17'),
        found('国庆', 8, 10, '2024-10-01'),
      ]);
    });

    it('keeps a date in a title', () => {
      assert.deepEqual(findAll('《1998年政府工作报告》'), [
        found('1998年', 1, 6, '1998'),
      ]);
    });

    it('keeps an unresolved range unresolved', () => {
      assert.deepEqual(findAll('今年3月5日至7日'), [
        found('今年3月5日', 0, 6),
        found('7日', 7, 9),
      ]);
    });

    it('continues across one joiner only', () => {
      assert.deepEqual(findAll('1998年3月5日，7日'), [
        found('1998年3月5日', 0, 9, '1998-03-05'),
        found('7日', 10, 12),
      ]);
    });
  });

  describe('when a bare number precedes 点', () => {
    it('matches after a part of the day', () => {
      assert.deepEqual(findAll('晚上十点见'), [found('晚上十点', 0, 4)]);
    });

    it('ignores it without context', () => {
      assert.deepEqual(findAll('提出3点建议'), []);
    });
  });

  describe('when characters outside the BMP precede', () => {
    const input = '𠀀😀于1998年3月5日到达';
    const spans = findTimes(input);

    it('finds one span', () => {
      assert.equal(spans.length, 1);
    });

    it('counts code points in start', () => {
      assert.equal(spans[0]?.start, 3);
    });

    it('counts code points in end', () => {
      assert.equal(spans[0]?.end, 12);
    });

    it('slices the matched text', () => {
      const text = [...input].slice(spans[0]?.start, spans[0]?.end).join('');
      assert.equal(text, '1998年3月5日');
    });

    it('offsets later spans too', () => {
      assert.deepEqual(findAll('😀今天😀明天'), [
        found('今天', 1, 3),
        found('明天', 4, 6),
      ]);
    });
  });

  it('labels every span 时间', () => {
    const labels = findTimes('1998年3月5日上午，明天14:30').map((s) => s.label);
    assert.deepEqual(labels, ['时间', '时间']);
  });
});

describe('timePlugin', () => {
  it('is named time', () => {
    assert.equal(timePlugin.name, 'time');
  });

  it('produces only 时间', () => {
    assert.deepEqual(timePlugin.labels, ['时间']);
  });

  it('delegates to findTimes', () => {
    assert.deepEqual(timePlugin.find('1998年'), findTimes('1998年'));
  });
});
