import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import iconv from 'iconv-lite';

import { formatScoreTable } from '../src/cli/eval-command.js';
import { InputError } from '../src/errors/errors.js';
import {
  readGold,
  type GoldFormat,
  type GoldReaderOptions,
} from '../src/eval/gold-readers.js';
import { parseLabelMap } from '../src/eval/label-map.js';
import { SpanScorer, scoreCounts } from '../src/eval/score.js';
import {
  countFindCalls,
  logLines,
  MARKER_PLUGIN,
  ROOT,
  runCli,
} from './helpers.js';

let dir = '';
let fileCount = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'uie-eval-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes content to a new file in the temp folder and returns its path. */
function writeGold(content: string | Buffer): string {
  const file = join(dir, `gold-${++fileCount}.txt`);
  writeFileSync(file, content);
  return file;
}

/** Reads a gold file into sentences as [text, [start, end, label][]]. */
async function read(
  file: string,
  format: GoldFormat,
  options?: GoldReaderOptions,
): Promise<[string, [number, number, string][]][]> {
  const out: [string, [number, number, string][]][] = [];
  for await (const s of readGold(file, format, options)) {
    out.push([s.text, s.spans.map((x) => [x.start, x.end, x.label])]);
  }
  return out;
}

/** Reads a gold file and returns the error it throws. */
async function readError(
  file: string,
  format: GoldFormat,
  options?: GoldReaderOptions,
): Promise<InputError> {
  try {
    await read(file, format, options);
  } catch (err) {
    assert.ok(err instanceof InputError, `expected InputError, got ${err}`);
    return err;
  }
  assert.fail('expected the reader to throw');
}

const MSRA = [
  '张\tB-PER',
  '三\tI-PER',
  '在\tO',
  '北\tB-LOC',
  '京\tI-LOC',
  '。\tO',
  '',
  '上 I-LOC',
  '海 I-LOC',
  '人 I-PER',
  '民 I-PER',
  '说 B-XYZ',
].join('\n');

describe('bio reader', () => {
  it('maps MSRA tags to labels', async () => {
    const [first] = await read(writeGold(MSRA), 'bio');
    assert.deepEqual(first, [
      '张三在北京。',
      [
        [0, 2, '人物'],
        [3, 5, '地点'],
      ],
    ]);
  });

  it('starts a span at I- without B-', async () => {
    const [, second] = await read(writeGold(MSRA), 'bio');
    assert.deepEqual(second, [
      '上海人民说',
      [
        [0, 2, '地点'],
        [2, 4, '人物'],
      ],
    ]);
  });

  it('reports the first line of each sentence', async () => {
    const lines: number[] = [];
    for await (const s of readGold(writeGold(MSRA), 'bio')) lines.push(s.line);
    assert.deepEqual(lines, [1, 8]);
  });

  it('accepts CRLF and several blank lines', async () => {
    const spaced = MSRA.replace('\n\n', '\n\n\n\n');
    const file = writeGold(spaced.replace(/\n/g, '\r\n'));
    const sentences = await read(file, 'bio');
    assert.equal(sentences.length, 2);
    assert.equal(sentences[0][0], '张三在北京。');
  });

  it('stops after the limit', async () => {
    const sentences = await read(writeGold(MSRA), 'bio', { limit: 1 });
    assert.equal(sentences.length, 1);
  });

  it('strips Weibo position digits', async () => {
    const weibo = [
      '科0\tB-PER.NAM',
      '比1\tI-PER.NAM',
      '是0\tO',
      '球0\tB-PER.NOM',
      '星1\tI-PER.NOM',
      '10\tO',
      'e14\tO',
    ].join('\n');
    assert.deepEqual(await read(writeGold(weibo), 'bio'), [
      ['科比是球星1e', [[0, 2, '人物']]],
    ]);
  });

  it('reads a bare tag as a space', async () => {
    const file = writeGold('甲\tO\nO\n乙\tO');
    assert.deepEqual(await read(file, 'bio'), [['甲 乙', []]]);
  });
});

describe('bmes reader', () => {
  it('maps Resume tags to labels', async () => {
    const resume = [
      '吴 B-NAME',
      '重 M-NAME',
      '阳 E-NAME',
      '， O',
      '汉 S-RACE',
      '族 O',
      '， O',
      '高 B-EDU',
      '中 E-EDU',
      '总 M-TITLE',
      '监 E-TITLE',
      '',
    ].join('\n');
    assert.deepEqual(await read(writeGold(resume), 'bmes'), [
      [
        '吴重阳，汉族，高中总监',
        [
          [0, 3, '人物'],
          [4, 5, '民族'],
          [7, 9, '学历'],
          [9, 11, '职位'],
        ],
      ],
    ]);
  });
});

describe('cluener reader', () => {
  const line = JSON.stringify({
    text: '浙商银行叶老桂博士说，叶老桂认为',
    label: {
      name: {
        叶老桂: [
          [4, 6],
          [11, 13],
        ],
      },
      company: { 浙商银行: [[0, 3]] },
    },
  });

  it('makes the end exclusive', async () => {
    const file = writeGold(`${line}\n\n{"text": "没有标注"}\n`);
    assert.deepEqual(await read(file, 'cluener'), [
      [
        '浙商银行叶老桂博士说，叶老桂认为',
        [
          [0, 4, '公司'],
          [4, 7, '人物'],
          [11, 14, '人物'],
        ],
      ],
      ['没有标注', []],
    ]);
  });

  it('applies a --map override', async () => {
    const labels = parseLabelMap('company=机构');
    const [[, spans]] = await read(writeGold(line), 'cluener', { labels });
    assert.deepEqual(spans[0], [0, 4, '机构']);
  });
});

describe('pku reader', () => {
  const paragraphs = [
    '19980101-01-001-002/m  中共中央/nt  总书记/n  、/w  国家/n  主席/n  江/nr  泽民/nr  ',
    '19980101-01-001-004/m  １２月/t  ３１日/t  ，/w  [中国/ns  科学院/n]nt  ' +
      '院长/n  路/nr  甬祥/nr  \r说/v  ',
    '',
    '19980101-01-001-002/m  中共中央/nt  总书记/n  、/w  国家/n  主席/n  江/nr  泽民/nr  ',
    '19980101-01-001-005/m  ',
  ];
  const content = iconv.encode(paragraphs.join('\r\n') + '\r\n', 'gbk');

  it('joins nr tokens into one span', async () => {
    const [first] = await read(writeGold(content), 'pku');
    assert.deepEqual(first, [
      '中共中央总书记、国家主席江泽民',
      [
        [0, 4, '机构'],
        [12, 15, '人物'],
      ],
    ]);
  });

  it('keeps two adjacent names apart', async () => {
    const line = '19980101-01-002-001/m  杜/nr  中武/nr  孙/nr  传刚/nr  ';
    const [[text, spans]] = await read(
      writeGold(iconv.encode(line + '\r\n', 'gbk')),
      'pku',
    );
    assert.equal(text, '杜中武孙传刚');
    assert.deepEqual(spans, [
      [0, 3, '人物'],
      [3, 6, '人物'],
    ]);
  });

  it('tags a bracket compound as one span', async () => {
    const [, second] = await read(writeGold(content), 'pku');
    assert.deepEqual(second, [
      '１２月３１日，中国科学院院长路甬祥说',
      [
        [0, 6, '时间'],
        [7, 12, '机构'],
        [14, 17, '人物'],
      ],
    ]);
  });

  it('reads a repeated line once', async () => {
    const sentences = await read(writeGold(content), 'pku');
    assert.equal(sentences.length, 2);
  });
});

describe('when a gold line is invalid', () => {
  it('names a wrong BIO tag', async () => {
    const file = writeGold('张\tB-PER\n三\tE-PER\n');
    const err = await readError(file, 'bio');
    assert.equal(
      err.message,
      `${file}:2: invalid BIO tag "E-PER"; expected O, B-TYPE or I-TYPE ` +
        '(for M-, E- and S- tags use --format bmes)',
    );
  });

  it('names a wrong BMES tag', async () => {
    const file = writeGold('张 B-PER\n三 I-PER\n');
    const err = await readError(file, 'bmes');
    assert.equal(
      err.message,
      `${file}:2: invalid BMES tag "I-PER"; expected O, B-TYPE, M-TYPE, ` +
        'E-TYPE or S-TYPE (for I- tags use --format bio)',
    );
  });

  it('names a line without a tag', async () => {
    const file = writeGold('张\tB-PER\n\n\n三\n');
    const err = await readError(file, 'bio');
    assert.equal(
      err.message,
      `${file}:4: expected "character<TAB>tag" or "character tag", got "三"`,
    );
  });

  it('sets the input error code', async () => {
    const err = await readError(writeGold('三\n'), 'bio');
    assert.equal(err.code, 'E_INPUT');
  });

  it('names a CLUENER surface mismatch', async () => {
    const row = { text: '叶老桂说', label: { name: { 叶老桂: [[0, 3]] } } };
    const file = writeGold(JSON.stringify(row) + '\n');
    const err = await readError(file, 'cluener');
    assert.equal(
      err.message,
      `${file}:1: label name "叶老桂": position [0,3] covers "叶老桂说" in ` +
        'the text; CLUENER positions are 0-based with the end inclusive',
    );
  });

  it('names a CLUENER position out of range', async () => {
    const row = { text: '叶老桂', label: { name: { 叶老桂: [[0, 3]] } } };
    const file = writeGold(JSON.stringify(row));
    const err = await readError(file, 'cluener');
    assert.equal(
      err.message,
      `${file}:1: label name "叶老桂": expected [start, end] with ` +
        '0 <= start <= end < 3 (0-based, end inclusive), got [0,3]',
    );
  });

  it('names invalid CLUENER JSON', async () => {
    const file = writeGold('{"text": "甲"}\n{"text": \n');
    const err = await readError(file, 'cluener');
    const prefix = `${file}:2: invalid JSON: `;
    assert.ok(err.message.startsWith(prefix), err.message);
  });

  it('names an invalid PKU token', async () => {
    const line = '19980101-01-001-001/m  迈向/v  充满v  ';
    const file = writeGold(iconv.encode(`${line}\r\n`, 'gbk'));
    const err = await readError(file, 'pku');
    assert.equal(
      err.message,
      `${file}:1: invalid token "充满v"; expected word/POS, [word/POS or ` +
        'word/POS]TAG',
    );
  });

  it('names a missing PKU paragraph id', async () => {
    const file = writeGold(iconv.encode('\r\n迈向/v  充满/v\r\n', 'gbk'));
    const err = await readError(file, 'pku');
    assert.equal(
      err.message,
      `${file}:2: expected a paragraph id such as 19980101-01-001-001/m as ` +
        'the first token, got "迈向/v"',
    );
  });

  it('names an unclosed PKU bracket', async () => {
    const line = '19980101-01-001-001/m  [中国/ns  科学院/n  ';
    const file = writeGold(iconv.encode(line, 'gbk'));
    const err = await readError(file, 'pku');
    assert.equal(
      err.message,
      `${file}:1: a bracket opened with "[" is never closed`,
    );
  });

  it('names bytes invalid in UTF-8', async () => {
    const file = writeGold(iconv.encode('张\tB-PER\n', 'gbk'));
    const err = await readError(file, 'bio');
    assert.equal(
      err.message,
      `${file}:1: invalid bytes for encoding utf-8; set --encoding to the ` +
        "file's encoding, such as gbk",
    );
  });

  it('names bytes invalid in GBK', async () => {
    // 江 in UTF-8 is E6 B1 9F: GBK reads E6 B1 as one character, and the
    // lead byte 9F cannot be followed by "/".
    const file = writeGold(Buffer.from('江/nr\n', 'utf8'));
    const err = await readError(file, 'pku', { encoding: 'gbk' });
    assert.equal(
      err.message,
      `${file}:1: invalid bytes for encoding gbk; set --encoding to the ` +
        "file's encoding, such as utf-8",
    );
  });

  it('names a UTF-8 PKU file read as GBK', async () => {
    const line =
      '19980101-01-001-001/m  中国/ns  政府/n  今天/t  宣布/v\n' +
      '19980101-01-001-002/m  北京/ns  上海/ns  江泽/nr  民族/n\n';
    // Every word has two characters, so the UTF-8 bytes are valid GBK.
    assert.ok(!iconv.decode(Buffer.from(line), 'gbk').includes('\ufffd'));
    const file = writeGold(line);
    const err = await readError(file, 'pku');
    assert.equal(
      err.message,
      `gold file ${file} looks like UTF-8: its first 128 bytes are valid UTF-8 with 16 non-ASCII characters. ` +
        'It is read as gbk, the default encoding of --format pku, which would garble its text and labels. ' +
        'Pass --encoding utf-8, or --encoding gbk if it is gbk',
    );
    assert.deepEqual(await read(file, 'pku', { encoding: 'utf-8' }), [
      [
        '中国政府今天宣布',
        [
          [0, 2, '地点'],
          [4, 6, '时间'],
        ],
      ],
      [
        '北京上海江泽民族',
        [
          [0, 2, '地点'],
          [2, 4, '地点'],
          [4, 6, '人物'],
        ],
      ],
    ]);
  });

  it('names a short UTF-8 PKU file', async () => {
    const file = writeGold('19980101-01-001-001/m  张三/nr  北京/ns\n');
    const err = await readError(file, 'pku');
    assert.match(
      err.message,
      /with 4 non-ASCII characters\. It is read as gbk/,
    );
    assert.equal(
      (await read(file, 'pku', { encoding: 'utf-8' }))[0][0],
      '张三北京',
    );
  });

  it('reads a short file with explicit GBK', async () => {
    const line = '19980101-01-001-001/m  张三/nr  北京/ns\n';
    const file = writeGold(Buffer.from(line));
    // The user's explicit encoding wins over the guess for a short file.
    const sentences = await read(file, 'pku', { encoding: 'gbk' });
    assert.equal(sentences.length, 1);
  });

  it('names a word-level BIO line', async () => {
    const file = writeGold('张三\tB-PER\n在\tO\n北京\tB-LOC\n');
    const err = await readError(file, 'bio');
    assert.equal(
      err.message,
      `${file}:1: word "张三" where one character is expected: bio files have ` +
        'one character and its tag per line, so split each word into ' +
        'characters (B-TYPE on the first, I-TYPE on the rest)',
    );
  });

  it('names a UTF-8 file read with --encoding', async () => {
    const file = writeGold(
      '张\tB-PER\n三\tI-PER\n在\tO\n北\tB-LOC\n京\tI-LOC\n工\tO\n作\tO\n。\tO\n',
    );
    const err = await readError(file, 'bio', { encoding: 'gb18030' });
    assert.match(
      err.message,
      /with 8 non-ASCII characters\. It is read as --encoding gb18030, which would garble its text and labels\. Pass --encoding utf-8$/,
    );
  });

  it('names a missing file', async () => {
    const file = join(dir, 'missing.bio');
    const err = await readError(file, 'bio');
    assert.match(err.message, /^cannot read gold file .*missing\.bio: ENOENT/);
  });
});

describe('parseLabelMap', () => {
  it('keeps the defaults', () => {
    const map = parseLabelMap();
    assert.equal(map.get('PER'), '人物');
    assert.equal(map.get('nt'), '机构');
    assert.equal(map.get('PER.NOM'), undefined);
  });

  it('reads schema labels as their own tags', () => {
    const map = parseLabelMap();
    assert.equal(map.get('人物'), '人物');
    assert.equal(map.get('景点'), '景点');
  });

  it('overrides and adds tags', () => {
    const map = parseLabelMap('PER=人名, GPE=地点');
    assert.equal(map.get('PER'), '人名');
    assert.equal(map.get('GPE'), '地点');
    assert.equal(map.get('LOC'), '地点');
  });

  it('rejects a label with a separator', () => {
    assert.throws(() => parseLabelMap('PER=人物;地点'), {
      name: 'RangeError',
      message:
        '--map: label "人物;地点" of "PER=人物;地点" contains ";"; map one ' +
        'tag to one label and separate pairs with commas',
    });
  });

  it('rejects a pair without =', () => {
    assert.throws(() => parseLabelMap('PER=人物,LOC'), {
      name: 'RangeError',
      message:
        '--map: expected TAG=LABEL pairs separated by commas, got "LOC" in ' +
        '"PER=人物,LOC"; for example --map PER=人物,LOC=地点',
    });
  });
});

describe('SpanScorer', () => {
  const scorer = new SpanScorer(['人物', '地点']);
  scorer.add(
    [
      { start: 0, end: 2, label: '人物' },
      { start: 3, end: 5, label: '地点' },
      { start: 6, end: 8, label: '人物' },
    ],
    [
      { start: 0, end: 2, label: '人物' },
      { start: 3, end: 6, label: '地点' },
      { start: 6, end: 8, label: '地点' },
      { start: 9, end: 10, label: '机构' },
    ],
  );
  scorer.add(
    [{ start: 0, end: 3, label: '人物' }],
    [
      { start: 0, end: 3, label: '人物' },
      { start: 0, end: 3, label: '人物' },
    ],
  );
  const report = scorer.report();

  it('scores each label', () => {
    const [person, place] = report.labels;
    assert.deepEqual(person, {
      label: '人物',
      gold: 3,
      predicted: 2,
      correct: 2,
      precision: 1,
      recall: 2 / 3,
      f1: 0.8,
    });
    assert.deepEqual(place, {
      label: '地点',
      gold: 1,
      predicted: 2,
      correct: 0,
      precision: 0,
      recall: 0,
      f1: 0,
    });
  });

  it('micro-averages the overall row', () => {
    assert.deepEqual(report.overall, {
      gold: 4,
      predicted: 4,
      correct: 2,
      precision: 0.5,
      recall: 0.5,
      f1: 0.5,
    });
  });

  it('scores zero counts as 0', () => {
    assert.deepEqual(scoreCounts({ gold: 0, predicted: 0, correct: 0 }), {
      gold: 0,
      predicted: 0,
      correct: 0,
      precision: 0,
      recall: 0,
      f1: 0,
    });
  });

  it('rejects an empty label list', () => {
    assert.throws(() => new SpanScorer([]), {
      name: 'RangeError',
      message: 'labels: expected at least one label, got none',
    });
  });
});

describe('formatScoreTable', () => {
  it('aligns Chinese labels', () => {
    const scorer = new SpanScorer(['人物']);
    scorer.add([{ start: 0, end: 2, label: '人物' }], []);
    assert.equal(
      formatScoreTable(scorer.report()),
      [
        'label    gold  predicted  correct       P       R      F1',
        '人物        1          0        0  0.0000  0.0000  0.0000',
        'overall     1          0        0  0.0000  0.0000  0.0000',
        '',
      ].join('\n'),
    );
  });

  it('counts failed sentences below', () => {
    const scorer = new SpanScorer(['人物']);
    scorer.add([{ start: 0, end: 2, label: '人物' }], []);
    const table = formatScoreTable(scorer.report(), {
      sentences: 3,
      failed: 1,
    });
    assert.equal(
      table.split('\n').at(-2),
      'failed: 1 of 3 sentences, scored as finding nothing',
    );
  });

  it('adds no line without failures', () => {
    const scorer = new SpanScorer(['人物']);
    scorer.add([{ start: 0, end: 2, label: '人物' }], []);
    assert.equal(
      formatScoreTable(scorer.report(), { sentences: 3, failed: 0 }),
      formatScoreTable(scorer.report()),
    );
  });
});

describe('eval command', () => {
  it('prints one JSON report', async () => {
    const file = writeGold(MSRA + '\n\n李\tB-PER\n白\tI-PER\n');
    const result = await runCli([
      'eval',
      '--gold',
      file,
      '--format',
      'bio',
      '--json',
      '--threads',
      '1',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.format, 'bio');
    assert.equal(report.sentences, 3);
    assert.deepEqual(
      report.labels.map((s: { label: string }) => s.label),
      ['人物', '地点'],
    );
    for (const score of [...report.labels, report.overall]) {
      for (const key of ['gold', 'predicted', 'correct']) {
        assert.ok(Number.isInteger(score[key]), `${key} of ${score.label}`);
      }
    }
    assert.equal(report.overall.gold, 5);
    assert.equal(report.failedSentences, 0);
    assert.ok(report.overall.f1 >= 0, `F1 ${report.overall.f1}`);
    assert.ok(report.overall.f1 <= 1, `F1 ${report.overall.f1}`);
  });

  it('scores around a failed sentence', async () => {
    const faulty = join(ROOT, 'test/fixtures/faulty-plugin.mjs');
    // The faulty plugin throws on 【抛出】 when its label 股票 is asked for.
    const gold = [
      { text: '张三在北京。', label: { name: { 张三: [[0, 1]] } } },
      { text: '【抛出】李四说。', label: { name: { 李四: [[4, 5]] } } },
      { text: '王五来了。', label: { name: { 王五: [[0, 1]] } } },
    ];
    const file = writeGold(gold.map((g) => JSON.stringify(g)).join('\n'));
    const result = await runCli(
      [
        'eval',
        '--gold',
        file,
        '--format',
        'cluener',
        '--json',
        '--threads',
        '1',
        '--schema',
        '人物,股票',
      ],
      { UIE_PLUGINS: `time,${faulty}`, UIE_ATTEMPTS: '1' },
    );
    assert.equal(result.code, 1, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.sentences, 3);
    assert.deepEqual(
      report.failed.map((f: { line: number }) => f.line),
      [2],
    );
    assert.equal(report.overall.gold, 3);
    assert.match(
      result.stderr,
      /extraction failed for 1 of 3 sentences of .* \(lines 2\); they were scored as finding nothing/,
    );
  });

  it('scores a plugin failure without rerunning', async () => {
    // The marker plugin throws on 【抛出】 and logs every text it reads.
    const gold = [
      { text: '张三在北京。', label: { name: { 张三: [[0, 1]] } } },
      { text: '【抛出】李四说。', label: { name: { 李四: [[4, 5]] } } },
      { text: '王五来了。', label: { name: { 王五: [[0, 1]] } } },
      { text: '赵六买入600519。', label: { name: { 赵六: [[0, 1]] } } },
    ];
    const file = writeGold(gold.map((g) => JSON.stringify(g)).join('\n'));
    const findLog = join(dir, `find-${fileCount}.log`);
    const result = await runCli(
      [
        'eval',
        '--gold',
        file,
        '--format',
        'cluener',
        '--json',
        '--threads',
        '1',
        '--schema',
        '人物,股票',
      ],
      { UIE_PLUGINS: MARKER_PLUGIN, UIE_TEST_FIND_LOG: findLog },
    );

    assert.equal(result.code, 1, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.sentences, 4);
    assert.deepEqual(
      report.failed.map((f: { line: number }) => f.line),
      [2],
    );
    assert.equal(
      report.failed[0].message,
      `extraction failed for the gold sentence on line 2: Error: rule plugin "marker" (${MARKER_PLUGIN}) failed: stock table not loaded`,
    );
    assert.equal(report.overall.gold, 4);
    assert.equal(report.failedSentences, 1);
    const calls = countFindCalls(findLog);
    assert.deepEqual(
      gold.map((g) => calls.get(g.text)),
      [1, 1, 1, 1],
    );
    const messages = logLines(result.stderr).map((l) => l.msg);
    assert.ok(
      !messages.includes('extraction task failed; retrying'),
      result.stderr,
    );
    assert.ok(
      !messages.includes(
        'extraction failed for a task of gold sentences; running them one by one',
      ),
      result.stderr,
    );
    const stacks = logLines<{ msg: string; error: string; stack: string }>(
      result.stderr,
    ).filter(
      (l) =>
        l.msg ===
        'rule plugin failed on a text; the stack shows where it threw',
    );
    assert.equal(stacks.length, 1, result.stderr);
    assert.match(stacks[0].stack, /caused by: Error: stock table not loaded/);
    assert.match(stacks[0].stack, /marker-plugin\.mjs:\d+/);
  });

  it('counts failed sentences in its table', async () => {
    const gold = [
      { text: '张三在北京。', label: { name: { 张三: [[0, 1]] } } },
      { text: '【抛出】李四说。', label: { name: { 李四: [[4, 5]] } } },
    ];
    const file = writeGold(gold.map((g) => JSON.stringify(g)).join('\n'));
    const result = await runCli(
      [
        'eval',
        '--gold',
        file,
        '--format',
        'cluener',
        '--threads',
        '1',
        '--schema',
        '人物,股票',
      ],
      {
        UIE_PLUGINS: MARKER_PLUGIN,
        UIE_TEST_FIND_LOG: join(dir, `find-${fileCount}.log`),
      },
    );

    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stdout, /^label +gold +predicted/);
    assert.equal(
      result.stdout.trimEnd().split('\n').at(-1),
      'failed: 1 of 2 sentences, scored as finding nothing',
    );
  });

  it('stops at start on a label too long for the overlap', async () => {
    const file = writeGold(MSRA);
    const label = '长'.repeat(200);
    const result = await runCli([
      'eval',
      '--gold',
      file,
      '--format',
      'bio',
      '--threads',
      '1',
      '--schema',
      `人物,${label}`,
    ]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(
      result.stderr,
      /schema \(UIE_SCHEMA\): label "长{20}…" \(200 characters\) leaves 53 characters of text per chunk/,
    );
  });

  it('rejects an unknown format', async () => {
    const result = await runCli(['eval', '--gold', 'x', '--format', 'conll']);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /--format: expected one of bio, bmes, cluener, pku, got "conll"/,
    );
  });
});
