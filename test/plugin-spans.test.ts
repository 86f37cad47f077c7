import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { pino } from 'pino';

import {
  PLUGIN_FILES,
  type RulePlugin,
  type RuleSpan,
} from '../src/rules/plugin.js';
import { findPluginSpans } from '../src/rules/plugin-spans.js';
import {
  countFindCalls,
  logLines,
  MARKER_PLUGIN,
  readJsonl,
  ROOT,
  runCli,
  runCliOk,
  tempDir,
} from './helpers.js';

const FAULTY_PLUGIN = join(ROOT, 'test/fixtures/faulty-plugin.mjs');
const FIX = 'Fix the plugin or remove it from the plugins setting';

/** A plugin for 股票 whose find returns the given value. */
function returning(value: unknown): RulePlugin {
  return {
    name: 'ticker',
    labels: ['股票'],
    find: () => value as RuleSpan[],
  };
}

describe('findPluginSpans', () => {
  it('returns valid spans unchanged', () => {
    const spans = [{ label: '股票', start: 2, end: 8, value: '600519' }];
    assert.deepEqual(
      findPluginSpans(returning(spans), '买入600519。', 9),
      spans,
    );
  });

  it('accepts a span that ends at the text end', () => {
    const spans = [{ label: '股票', start: 0, end: 9 }];
    assert.deepEqual(
      findPluginSpans(returning(spans), '买入600519。', 9),
      spans,
    );
  });

  it('names the plugin when find throws', () => {
    const plugin: RulePlugin = {
      name: 'ticker',
      labels: ['股票'],
      find: () => {
        throw new Error('stock table not loaded');
      },
    };
    assert.throws(() => findPluginSpans(plugin, 'x', 1), {
      name: 'Error',
      message: 'rule plugin "ticker" failed: stock table not loaded',
    });
  });

  it('logs a thrown message once', () => {
    const plugin: RulePlugin = {
      name: 'thrower',
      labels: ['股票'],
      find: () => {
        throw new Error('boom');
      },
    };
    let thrown: unknown;
    try {
      findPluginSpans(plugin, 'x', 1);
    } catch (err) {
      thrown = err;
    }
    assert.ok(thrown instanceof Error);

    const logged = pino.stdSerializers.err(thrown);
    assert.equal(logged.message, 'rule plugin "thrower" failed: boom');
    assert.match(
      logged.stack,
      /\ncaused by: Error: boom\n\s+at (Object\.)?find /,
    );
  });

  it('rejects a result that is not an array', () => {
    assert.throws(() => findPluginSpans(returning(undefined), 'x', 1), {
      name: 'TypeError',
      message: `rule plugin "ticker": find(text) must return an array of spans, got undefined. ${FIX}`,
    });
  });

  it('names a Promise result', () => {
    const pending = Promise.resolve([]);
    assert.throws(() => findPluginSpans(returning(pending), 'x', 1), {
      name: 'TypeError',
      message: `rule plugin "ticker": find(text) must return an array of spans, got a Promise (find must return its spans directly, not be async). ${FIX}`,
    });
  });

  it('shows a NaN offset as NaN', () => {
    const span = { label: '股票', start: NaN, end: 2 };
    assert.throws(() => findPluginSpans(returning([span]), '买入股票', 4), {
      name: 'RangeError',
      message: `rule plugin "ticker" returned an invalid span {"label":"股票","start":"NaN","end":2}: start and end must be integer code-point offsets. ${FIX}`,
    });
  });

  const badSpans: {
    span: unknown;
    name: string;
    problem: string;
  }[] = [
    {
      span: { label: '股票', start: 1.5, end: 3 },
      name: 'RangeError',
      problem: 'start and end must be integer code-point offsets',
    },
    {
      span: { label: '股票', start: -1, end: 3 },
      name: 'RangeError',
      problem: 'expected 0 <= start < end <= 4, the text length in code points',
    },
    {
      span: { label: '股票', start: 2, end: 5 },
      name: 'RangeError',
      problem: 'expected 0 <= start < end <= 4, the text length in code points',
    },
    {
      span: { label: '股票', start: 2, end: 2 },
      name: 'RangeError',
      problem: 'expected 0 <= start < end <= 4, the text length in code points',
    },
    {
      span: { label: '基金', start: 0, end: 1 },
      name: 'RangeError',
      problem: 'label "基金" is not among the plugin\'s labels (股票)',
    },
    {
      span: { label: '股票', start: '0', end: 1 },
      name: 'TypeError',
      problem: 'start must be a number',
    },
    {
      span: { label: '股票', start: 0 },
      name: 'TypeError',
      problem: 'end must be a number',
    },
    {
      span: { start: 0, end: 1 },
      name: 'TypeError',
      problem: 'label must be a string',
    },
    {
      span: { label: '股票', start: 0, end: 1, value: 600519 },
      name: 'TypeError',
      problem: 'value must be a string when present',
    },
    {
      span: null,
      name: 'TypeError',
      problem: 'expected an object with label, start and end',
    },
  ];
  for (const { span, name, problem } of badSpans) {
    it(`rejects ${JSON.stringify(span)}`, () => {
      const good = { label: '股票', start: 0, end: 1 };
      assert.throws(
        () => findPluginSpans(returning([good, span]), '买入股票', 4),
        {
          name,
          message: `rule plugin "ticker" returned an invalid span ${JSON.stringify(span)}: ${problem}. ${FIX}`,
        },
      );
    });
  }
});

describe('when a plugin was loaded from a file', () => {
  const file = '/srv/plugins/ticker.mjs';

  /** A plugin for 股票 from `file` whose find returns the given value. */
  function fromFile(value: unknown): RulePlugin {
    const plugin = returning(value);
    PLUGIN_FILES.set(plugin, file);
    return plugin;
  }

  it('names the file for an invalid span', () => {
    const span = { label: '股票', start: 0, end: 9 };
    assert.throws(() => findPluginSpans(fromFile([span]), '买入股票', 4), {
      name: 'RangeError',
      message: `rule plugin "ticker" (${file}) returned an invalid span ${JSON.stringify(span)}: expected 0 <= start < end <= 4, the text length in code points. ${FIX}`,
    });
  });

  it('names the file for a wrong result', () => {
    assert.throws(() => findPluginSpans(fromFile(null), 'x', 1), {
      name: 'TypeError',
      message: `rule plugin "ticker" (${file}): find(text) must return an array of spans, got null. ${FIX}`,
    });
  });

  it('matches the README examples', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('## Rule plugins');
    const section = readme
      .slice(start, readme.indexOf('\n## ', start + 1))
      .replace(/\s+/g, ' ');
    const thrower = fromFile([]);
    thrower.find = () => {
      throw new Error('stock table not loaded');
    };
    const invalid = fromFile([{ label: '股票', start: 0, end: 9 }]);

    for (const plugin of [thrower, invalid]) {
      let line = '';
      try {
        findPluginSpans(plugin, '买入股票', 4);
      } catch (err) {
        // The error field of an output line, as extract writes it.
        line = `${(err as Error).name}: ${(err as Error).message}`;
      }
      // The README leaves out the span and the thrown message.
      const shown = line.replace(/ \{.*| failed: .*/, '');
      assert.ok(shown.length > 0, 'find did not fail');
      assert.ok(section.includes(`\`${shown}`), `README lacks ${shown}`);
    }
  });
});

interface Line {
  id: string;
  entities: { label: string; text: string; source: string }[];
  error?: string;
}

describe('when a rule plugin misbehaves in extract', () => {
  it('exits 1 when every document fails', async () => {
    const dir = tempDir('plugin-spans');
    const csv = join(dir, 'docs.csv');
    writeFileSync(csv, 'id,text\nb,【抛出】买入600519。\nc,【抛出】卖出。\n');
    const out = join(dir, 'out.jsonl');

    const result = await runCli(
      ['extract', csv, '-o', out, '--threads', '1', '--schema', '股票'],
      { UIE_PLUGINS: FAULTY_PLUGIN },
    );

    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /uie-batch: every document failed; /);
    const lines = readJsonl<Line>(out);
    assert.deepEqual(
      lines.map((l) => [l.id, l.error]),
      [
        [
          'b',
          `Error: rule plugin "faulty" (${FAULTY_PLUGIN}) failed: stock table not loaded`,
        ],
        [
          'c',
          `Error: rule plugin "faulty" (${FAULTY_PLUGIN}) failed: stock table not loaded`,
        ],
      ],
    );
  });

  it('fails broken documents naming the plugin', async () => {
    const dir = tempDir('plugin-spans');
    const csv = join(dir, 'docs.csv');
    writeFileSync(
      csv,
      'id,text\n' +
        'a,买入600519。\n' +
        'b,【抛出】买入600519。\n' +
        'c,【越界】买入600519。\n' +
        'd,【标签】买入600519。\n' +
        'e,卖出000001。\n',
    );
    const out = join(dir, 'out.jsonl');

    const result = await runCli(
      ['extract', csv, '-o', out, '--threads', '1', '--schema', '股票'],
      { UIE_PLUGINS: FAULTY_PLUGIN },
    );

    assert.equal(result.code, 0, result.stderr);
    const lines = new Map(readJsonl<Line>(out).map((l) => [l.id, l]));
    assert.deepEqual(
      lines.get('a')?.entities.map((e) => [e.text, e.source]),
      [['600519', 'faulty']],
    );
    assert.equal(lines.get('e')?.entities[0]?.text, '000001');
    assert.equal(
      lines.get('b')?.error,
      `Error: rule plugin "faulty" (${FAULTY_PLUGIN}) failed: stock table not loaded`,
    );
    assert.match(
      lines.get('c')?.error ?? '',
      /^RangeError: rule plugin "faulty" \(.*\/faulty-plugin\.mjs\) returned an invalid span .*: expected 0 <= start < end <= 13,/,
    );
    assert.match(
      lines.get('d')?.error ?? '',
      /^RangeError: rule plugin "faulty" \(.*\/faulty-plugin\.mjs\) returned an invalid span .*: label "基金" is not among the plugin's labels \(股票\)/,
    );
    assert.match(result.stderr, /3 failed, 0 rows rejected/);
    const logged = logLines<{
      msg: string;
      id: string;
      line: number;
      error: string;
    }>(result.stderr);
    const failed = logged.filter(
      (l) => l.msg === 'document failed; its line carries the error',
    );
    assert.deepEqual(
      failed.map((l) => [l.id, l.line, l.error]),
      [
        ['b', 3, lines.get('b')?.error],
        ['c', 4, lines.get('c')?.error],
        ['d', 5, lines.get('d')?.error],
      ],
    );
    assert.ok(
      logged.every((l) => l.msg !== 'extraction task failed; retrying'),
      result.stderr,
    );
    // Only the throw has a stack worth logging; invalid spans do not.
    const stacks = logged.filter(
      (l) =>
        l.msg ===
        'rule plugin failed on a text; the stack shows where it threw',
    );
    assert.deepEqual(
      stacks.map((l) => l.error),
      [lines.get('b')?.error],
    );
  });
});

describe('when a rule plugin fails on some texts in extract', () => {
  const dir = tempDir('plugin-text-failures');
  const rows = [
    'a,张三买入600519。',
    'b,李四在北京卖出000001。',
    'c,【抛出】王五买入600036。',
    'd,赵六在上海。',
    'e,孙七买入601318。',
    'f,周八去了广州。',
    'g,【抛出】吴九卖出000002。',
    'h,郑十买入600000。',
  ];
  const texts = rows.map((r) => r.slice(2));
  const error = `Error: rule plugin "marker" (${MARKER_PLUGIN}) failed: stock table not loaded`;
  const args = ['--threads', '1', '--schema', '人物,股票'];
  const findLog = join(dir, 'find.log');
  let result: { code: number | null; stderr: string };
  let lines: Map<string, Line>;
  let reference: Line[];

  before(async () => {
    const clean = join(dir, 'clean.csv');
    const unmarked = rows.filter((r) => !r.includes('【抛出】'));
    writeFileSync(clean, ['id,text', ...unmarked].join('\n') + '\n');
    const referenceOut = join(dir, 'reference.jsonl');
    await runCliOk(['extract', clean, '-o', referenceOut, ...args], {
      UIE_PLUGINS: MARKER_PLUGIN,
      UIE_TEST_FIND_LOG: join(dir, 'reference-find.log'),
    });
    reference = readJsonl<Line>(referenceOut);

    const csv = join(dir, 'docs.csv');
    writeFileSync(csv, ['id,text', ...rows].join('\n') + '\n');
    const out = join(dir, 'out.jsonl');
    result = await runCli(['extract', csv, '-o', out, ...args], {
      UIE_PLUGINS: MARKER_PLUGIN,
      UIE_TEST_FIND_LOG: findLog,
    });
    lines = new Map(readJsonl<Line>(out).map((l) => [l.id, l]));
  });

  it('keeps the other documents', () => {
    assert.equal(result.code, 0, result.stderr);
    const sources = new Set(reference[0].entities.map((e) => e.source));
    assert.deepEqual([...sources].sort(), ['marker', 'model']);
    for (const line of reference) {
      assert.deepEqual(lines.get(line.id), line, `document ${line.id}`);
    }
  });

  it('fails the marked documents', () => {
    assert.deepEqual(lines.get('c'), { id: 'c', entities: [], error });
    assert.deepEqual(lines.get('g'), { id: 'g', entities: [], error });
    assert.match(
      result.stderr,
      /8 documents \(8 chunks\) written to .*; 2 failed, 0 rows rejected/,
    );
    const failed = logLines<{ msg: string; id: string; line: number }>(
      result.stderr,
    ).filter((l) => l.msg === 'document failed; its line carries the error');
    assert.deepEqual(
      failed.map((l) => [l.id, l.line]),
      [
        ['c', 4],
        ['g', 8],
      ],
    );
  });

  it('reads each text once', () => {
    const calls = countFindCalls(findLog);
    assert.deepEqual(
      texts.map((t) => [t, calls.get(t)]),
      texts.map((t) => [t, 1]),
    );
    assert.equal(calls.size, texts.length);
    assert.doesNotMatch(result.stderr, /extraction task failed; retrying/);
  });

  it('logs each throw stack once', () => {
    const stacks = logLines<{ msg: string; error: string; stack: string }>(
      result.stderr,
    ).filter(
      (l) =>
        l.msg ===
        'rule plugin failed on a text; the stack shows where it threw',
    );
    assert.equal(stacks.length, 1, result.stderr);
    assert.equal(stacks[0].error, error);
    assert.match(stacks[0].stack, /caused by: Error: stock table not loaded/);
    assert.match(stacks[0].stack, /marker-plugin\.mjs:\d+/);
  });
});

describe('when the README plugin example runs', () => {
  it('counts offsets in code points', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Rule plugins'));
    const example = /```js\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(example, 'no js block in the Rule plugins section');
    const dir = tempDir('readme-plugin');
    const plugin = join(dir, 'ticker.mjs');
    writeFileSync(plugin, example);
    const csv = join(dir, 'docs.csv');
    writeFileSync(csv, 'id,text\na,😀😀股票600519涨了\n');
    const out = join(dir, 'out.jsonl');

    const result = await runCli(
      ['extract', csv, '-o', out, '--threads', '1', '--schema', '股票'],
      { UIE_PLUGINS: plugin },
    );

    assert.equal(result.code, 0, result.stderr);
    const [line] = readJsonl<Line>(out);
    assert.deepEqual(
      line.entities.map((e) => [e.text, e.source]),
      [['600519', 'ticker']],
    );
  });
});
