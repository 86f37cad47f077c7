import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { readJsonl, ROOT, runCli, tempDir } from './helpers.js';

interface Line {
  id: string;
  entities: {
    label: string;
    text: string;
    start: number;
    end: number;
    value?: string;
  }[];
  error?: string;
}

const EXPECTED: Record<string, string[]> = {
  '1': [
    '人物 李白',
    '地点 碎叶城',
    '人物 杜甫',
    '地点 成都',
    '人物 王维',
    '地点 终南山',
  ],
  '2': [
    '人物 张三',
    '地点 北京市',
    '人物 李四',
    '地点 上海市',
    '人物 王五',
    '地点 深圳市',
  ],
  '3': ['人物 苏轼', '地点 黄州'],
  '4': [],
  '5': ['人物 周杰伦', '地点 台北市', '人物 林俊杰', '地点 杭州市'],
  '6': ['时间 1998年3月5日', '人物 钟南山', '地点 广州市'],
};

// NOTE: the shipped model gets these wrong. The tests still run and print
// the difference, but they do not fail the suite until a better model ships.
const KNOWN_MISSES: Record<string, string | undefined> = {
  '1': 'tags 叶城 (of 碎叶城) as a person instead of 碎叶城 as a place',
  '6': 'tags 钟南山 as a place',
};

describe('extract on the example corpus', () => {
  let lines: Line[] = [];
  let texts: Map<string, string>;

  before(async () => {
    const dir = tempDir('extract');
    const out = join(dir, 'out.jsonl');
    const result = await runCli([
      'extract',
      join(ROOT, 'examples/corpus.csv'),
      '-o',
      out,
      '--schema',
      '人物,地点,时间',
      '--threads',
      '2',
    ]);
    assert.equal(result.code, 0, result.stderr);
    lines = readJsonl<Line>(out);
    const { readFileSync } = await import('node:fs');
    texts = new Map(
      readFileSync(join(ROOT, 'examples/corpus.csv'), 'utf8')
        .split('\n')
        .slice(1)
        .filter(Boolean)
        .map((row) => {
          const comma = row.indexOf(',');
          return [
            row.slice(0, comma),
            row.slice(comma + 1).replace(/^"|"$/g, ''),
          ];
        }),
    );
  });

  it('writes one line per document in input order', () => {
    assert.deepEqual(
      lines.map((l) => l.id),
      [...texts.keys()],
    );
  });

  for (const [id, expected] of Object.entries(EXPECTED)) {
    const todo = KNOWN_MISSES[id];
    it(`finds exactly the entities of document ${id}`, { todo }, () => {
      const line = lines.find((l) => l.id === id)!;
      const got = line.entities.map((e) => `${e.label} ${e.text}`);
      assert.deepEqual(got, expected);
    });
  }

  it('gives the ISO date of a full date', () => {
    const time = lines
      .find((l) => l.id === '6')!
      .entities.find((e) => e.label === '时间');
    assert.equal(time?.value, '1998-03-05');
  });

  it('keeps every offset valid', () => {
    for (const line of lines) {
      const chars = [...texts.get(line.id)!];
      for (const e of line.entities) {
        assert.equal(
          chars.slice(e.start, e.end).join(''),
          e.text,
          `${line.id} ${e.label}`,
        );
      }
    }
  });
});
