import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { pino, type Logger } from 'pino';

import { loadSettings } from '../src/config/config.js';
import type { ExtractTask } from '../src/engine/extract-task.js';
import type { ExtractionPool } from '../src/engine/pool.js';
import type { TextOutcome } from '../src/engine/text-outcome.js';
import { PluginTimeoutError } from '../src/errors/errors.js';
import { evaluateSentences } from '../src/eval/evaluate.js';
import { SpanScorer } from '../src/eval/score.js';
import type { Engine } from '../src/pipeline/engine.js';
import { extractFile } from '../src/pipeline/extract-file.js';
import {
  countFindCalls,
  deletePrefix,
  logLines,
  readJsonl,
  ROOT,
  runCli,
  runCliOk,
  tempDir,
  uniquePrefix,
} from './helpers.js';

interface Line {
  id: string;
  entities: unknown[];
  error?: string;
}

interface LogLine {
  msg: string;
  err?: { message: string };
}

const STALL_PLUGIN = join(ROOT, 'test/fixtures/stall-plugin.mjs');
const PLUGIN_TIMEOUT =
  'extraction task of 1 text timed out after 1 s in rule plugin "stall"';
const MODEL_TIMEOUT =
  'extraction task of 1 text timed out after 1 s in the model';

/**
 * A pool stand-in that records the texts of each task it runs. A task
 * with a text containing 慢 times out inside a plugin, and one with a text
 * containing 卡 times out in the model on its first run only.
 */
class FakePool {
  readonly threads = 1;
  readonly tasks: string[][] = [];
  private stalledInModel = false;

  async run(task: ExtractTask): Promise<TextOutcome[]> {
    this.tasks.push(task.texts);
    const count = task.texts.length;
    const texts = count === 1 ? '1 text' : `${count} texts`;
    if (task.texts.some((t) => t.includes('慢'))) {
      throw new PluginTimeoutError(
        `extraction task of ${texts} timed out after 1 s in rule plugin "stall"`,
      );
    }
    if (!this.stalledInModel && task.texts.some((t) => t.includes('卡'))) {
      this.stalledInModel = true;
      throw new Error(
        `extraction task of ${texts} timed out after 1 s in the model`,
      );
    }
    return task.texts.map(() => []);
  }

  /** Returns how many tasks contained a text with `marker`. */
  runsWith(marker: string): number {
    return this.tasks.filter((t) => t.some((x) => x.includes(marker))).length;
  }
}

function fakeEngine(pool: FakePool): Engine {
  const settings = loadSettings({ attempts: 3, schema: ['人物', '时间'] }, {});
  return {
    pool: pool as unknown as ExtractionPool,
    manifest: { name: 'fake', version: '0', labels: ['人物'] },
    chunkLength: 200,
    settings,
    untrained: () => [],
  } as unknown as Engine;
}

/** Creates a logger whose lines a test can read. */
function memoryLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as LogLine);
      done();
    },
  });
  return { log: pino({ level: 'warn' }, stream), lines };
}

describe('when extract times out in a rule plugin', () => {
  const dir = tempDir('plugin-timeout-extract');

  async function extract(rows: string[]) {
    const csv = join(dir, `docs-${rows.length}.csv`);
    writeFileSync(csv, ['id,text', ...rows].join('\n') + '\n');
    const out = join(dir, `out-${rows.length}.jsonl`);
    const pool = new FakePool();
    const { log, lines } = memoryLog();
    const summary = await extractFile(
      fakeEngine(pool),
      csv,
      out,
      join(dir, 'rejects.jsonl'),
      {},
      log,
    );
    return { pool, lines, summary, out: readJsonl<Line>(out) };
  }

  it('runs the chunks alone at once', async () => {
    const { pool, lines, summary, out } = await extract([
      'a,张三在北京。',
      'b,李四慢慢地去了上海。',
      'c,王五在广州。',
    ]);

    assert.deepEqual(
      pool.tasks.map((t) => t.length),
      [3, 1, 1, 1],
    );
    assert.equal(pool.runsWith('慢'), 2);
    assert.equal(summary.failed, 1);
    assert.deepEqual(
      out.map((l) => [l.id, l.error]),
      [
        ['a', undefined],
        ['b', `PluginTimeoutError: ${PLUGIN_TIMEOUT}`],
        ['c', undefined],
      ],
    );
    assert.ok(
      lines.every((l) => l.msg !== 'extraction task failed; retrying'),
      JSON.stringify(lines),
    );
  });

  it('still retries a timeout in the model', async () => {
    const { pool, lines, summary, out } = await extract([
      'a,张三在北京。',
      'b,李四卡在上海。',
    ]);

    assert.deepEqual(
      pool.tasks.map((t) => t.length),
      [2, 2],
    );
    assert.equal(summary.failed, 0);
    assert.ok(out.every((l) => l.error === undefined));
    const retries = lines.filter(
      (l) => l.msg === 'extraction task failed; retrying',
    );
    assert.deepEqual(
      retries.map((l) => l.err?.message),
      [MODEL_TIMEOUT.replace('1 text', '2 texts')],
    );
  });
});

describe('when eval times out in a rule plugin', () => {
  async function* gold(texts: string[]) {
    for (const [i, text] of texts.entries()) {
      yield { text, spans: [], line: i + 1 };
    }
  }

  it('splits the task at once', async () => {
    const pool = new FakePool();
    const { log, lines } = memoryLog();
    const summary = await evaluateSentences(
      fakeEngine(pool),
      gold(['张三在北京。', '李四慢慢地去了上海。', '王五在广州。']),
      new SpanScorer(['人物']),
      log,
    );

    assert.deepEqual(
      pool.tasks.map((t) => t.length),
      [3, 1, 1, 1],
    );
    assert.equal(pool.runsWith('慢'), 2);
    assert.deepEqual(
      summary.failed.map((f) => f.line),
      [2],
    );
    assert.match(summary.failed[0].message, /in rule plugin "stall"/);
    assert.ok(
      lines.every((l) => l.msg !== 'extraction task failed; retrying'),
      JSON.stringify(lines),
    );
  });
});

describe('when a worker times out in a rule plugin', () => {
  const dir = tempDir('plugin-timeout-worker');
  const prefix = uniquePrefix('plugin-timeout');
  const findLog = join(dir, 'find.log');
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: join(dir, 'results'),
    UIE_PLUGINS: `time,${STALL_PLUGIN}`,
    UIE_TASK_TIMEOUT_SECONDS: '1',
    UIE_TEST_FIND_LOG: findLog,
  };
  const shared = [
    'a,张三在北京。',
    'b,李四慢慢地去了上海。',
    'c,王五在广州。',
    'd,赵六在深圳。',
  ];
  const single = ['e,孙七在杭州。', 'f,周八慢慢地走了。'];
  let worker: { code: number | null; stderr: string };

  after(() => deletePrefix(prefix));

  function writeCsv(name: string, rows: string[]): string {
    const csv = join(dir, `${name}.csv`);
    writeFileSync(csv, ['id,text', ...rows].join('\n') + '\n');
    return csv;
  }

  async function exported(run: string): Promise<Line[]> {
    const out = join(dir, `${run}.jsonl`);
    await runCli(['export', '--run', run, '-o', out], env);
    return readJsonl<Line>(out);
  }

  it('settles its job without retries', { timeout: 120_000 }, async () => {
    await runCliOk(['enqueue', writeCsv('shared', shared), '--run', 'r1'], {
      ...env,
      UIE_CHUNKS_PER_JOB: '4',
    });
    await runCliOk(['enqueue', writeCsv('single', single), '--run', 'r2'], {
      ...env,
      UIE_CHUNKS_PER_JOB: '1',
    });
    worker = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      env,
    );
    assert.equal(worker.code, 0, worker.stderr);

    const lines = await exported('r1');
    assert.deepEqual(
      lines.map((l) => [l.id, l.error?.replace(/ \(.*/, '')]),
      [
        ['a', undefined],
        ['b', `PluginTimeoutError: ${PLUGIN_TIMEOUT}`],
        ['c', undefined],
        ['d', undefined],
      ],
    );
    const calls = countFindCalls(findLog);
    // Once in the job's task, once alone.
    assert.equal(calls.get('李四慢慢地去了上海。'), 2);
    assert.equal(calls.get('张三在北京。'), 2);
  });

  it('fails a one-chunk job at once', async () => {
    const lines = await exported('r2');
    assert.deepEqual(
      lines.map((l) => [l.id, l.error?.replace(/ \(.*/, '')]),
      [
        ['e', undefined],
        ['f', `PluginTimeoutError: ${PLUGIN_TIMEOUT}`],
      ],
    );
    assert.equal(countFindCalls(findLog).get('周八慢慢地走了。'), 1);
    const failed = logLines<LogLine>(worker.stderr).filter(
      (l) => l.msg === 'job failed',
    );
    assert.deepEqual(
      failed.map((l) => l.err?.message.replace(/ \(.*/, '')),
      [PLUGIN_TIMEOUT],
    );
  });
});
