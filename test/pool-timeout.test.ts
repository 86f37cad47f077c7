import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { pino } from 'pino';

import { chunkLengthFor } from '../src/chunking/plan.js';
import { loadSettings, modelPath } from '../src/config/config.js';
import { ExtractionPool } from '../src/engine/pool.js';
import type { ThreadSettings } from '../src/engine/extract-task.js';
import { readModelFolder } from '../src/model/model-folder.js';
import { extractFile } from '../src/pipeline/extract-file.js';
import { readJsonl, ROOT, tempDir } from './helpers.js';

interface Line {
  id: string;
  entities: { label: string; source: string; value?: string }[];
  error?: string;
}

const dir = tempDir('pool-timeout');
const MODEL_DIR = join(ROOT, 'models/tiny');
const LEXICON = join(MODEL_DIR, 'lexicon.txt');
// A rule plugin whose find(text) never returns for texts marked 【卡死】.
const LOOP_PLUGIN = join(dir, 'loop-plugin.mjs');
writeFileSync(
  LOOP_PLUGIN,
  [
    'export default {',
    "  name: 'loop',",
    "  labels: ['时间'],",
    '  find(text) {',
    "    if (text.includes('【卡死】')) for (;;);",
    '    return [];',
    '  },',
    '};',
  ].join('\n') + '\n',
);
const SCHEMA = ['人物', '地点', '时间'];

function threadSettings(plugins: string[]): ThreadSettings {
  return {
    modelDir: MODEL_DIR,
    threshold: 0.5,
    batchTokens: 4096,
    plugins,
    intraOpThreads: 1,
    memoryMb: 0,
  };
}

async function startPool(
  threads: number,
  taskTimeoutMs: number,
): Promise<ExtractionPool> {
  const pool = new ExtractionPool(
    threads,
    threadSettings(['time', LOOP_PLUGIN]),
    { taskTimeoutMs },
  );
  pool.provideLexicon(LEXICON);
  await pool.warmUp();
  return pool;
}

describe('when a rule plugin never returns', () => {
  let pool: ExtractionPool;
  before(async () => {
    pool = await startPool(1, 1000);
  });
  after(() => pool.close());

  it('fails the task after the limit', { timeout: 60_000 }, async () => {
    const started = Date.now();
    await assert.rejects(
      pool.run({ texts: ['【卡死】张三在北京。'], schema: SCHEMA }),
      {
        name: 'PluginTimeoutError',
        code: 'E_PLUGIN_TIMEOUT',
        message:
          `extraction task of 1 text timed out after 1 s in rule plugin "loop" (${LOOP_PLUGIN}); ` +
          'fix or remove that plugin, or raise taskTimeoutSeconds (UIE_TASK_TIMEOUT_SECONDS) if it is only slow',
      },
    );
    assert.ok(Date.now() - started >= 1000);
  });

  it('runs the next task on a new thread', async () => {
    const [entities] = await pool.run({
      texts: ['1998年3月5日，张三在北京。'],
      schema: SCHEMA,
    });
    assert.ok(Array.isArray(entities), JSON.stringify(entities));
    // The value comes from the time plugin, also where the model's span of
    // the date wins.
    assert.ok(
      entities.some((e) => e.value === '1998-03-05'),
      JSON.stringify(entities),
    );
  });
});

describe('when one thread is stuck', () => {
  let pool: ExtractionPool;
  before(async () => {
    pool = await startPool(2, 3000);
  });
  after(() => pool.close());

  it(
    'serves other tasks on the other thread',
    { timeout: 60_000 },
    async () => {
      const stuck = pool.run({
        texts: ['【卡死】李四在上海。'],
        schema: SCHEMA,
      });
      stuck.catch(() => undefined);
      let stuckSettled = false;
      void stuck.then(
        () => (stuckSettled = true),
        () => (stuckSettled = true),
      );
      for (let i = 0; i < 5; i++) {
        const [entities] = await pool.run({
          texts: [`${1990 + i}年5月1日，王五在深圳。`],
          schema: SCHEMA,
        });
        assert.ok(Array.isArray(entities), JSON.stringify(entities));
        assert.ok(entities.length > 0, JSON.stringify(entities));
      }
      assert.equal(stuckSettled, false, 'the stuck task ended too early');
      await assert.rejects(stuck, /timed out after 3 s in rule plugin/);
    },
  );
});

describe('when taskTimeoutMs is invalid', () => {
  for (const value of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`rejects ${value}`, () => {
      assert.throws(
        () =>
          new ExtractionPool(1, threadSettings([]), { taskTimeoutMs: value }),
        {
          name: 'RangeError',
          message: `taskTimeoutMs: expected a number >= 0, got ${value}`,
        },
      );
    });
  }
});

describe('when the limit passes during a model run', () => {
  // Runs in a child process, because a thread ended inside ONNX Runtime
  // would abort the test process. batchTokens lets 400 texts of 245
  // characters into one ONNX run, which takes seconds on models/tiny.
  const script = join(dir, 'limit-in-run.mjs');
  const poolUrl = pathToFileURL(join(ROOT, 'dist/src/engine/pool.js')).href;
  writeFileSync(
    script,
    `
import { ExtractionPool } from ${JSON.stringify(poolUrl)};
const modelDir = ${JSON.stringify(MODEL_DIR)};
const pool = new ExtractionPool(1, {
  modelDir, threshold: 0.5, batchTokens: 1_000_000, plugins: [],
  intraOpThreads: 1, memoryMb: 0,
}, { taskTimeoutMs: 500 });
pool.provideLexicon(${JSON.stringify(LEXICON)});
await pool.warmUp();
const sentence = '1998年3月5日，钟南山在广州市的中山大学附属第一医院接受了记者的采访。';
const text = sentence.repeat(8).slice(0, 245);
const texts = Array.from({ length: 400 }, () => text);
const schema = ['人物', '地点', '机构'];
const started = performance.now();
let message;
let name;
try {
  await pool.run({ texts, schema });
} catch (err) {
  message = err.message;
  name = err.name;
}
const ms = performance.now() - started;
const [next] = await pool.run({ texts: ['张三在北京。'], schema });
await pool.close();
console.log(JSON.stringify({ message, name, ms, next: Array.isArray(next) }));
`,
  );

  it(
    'lets the run finish, then fails the task',
    { timeout: 120_000 },
    async () => {
      const child = spawn(process.execPath, [script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const [code, signal] = await new Promise<[number | null, string | null]>(
        (resolve) => child.on('close', (c, s) => resolve([c, s])),
      );
      assert.doesNotMatch(stderr, /terminate called/);
      assert.equal(signal, null, stderr);
      assert.equal(code, 0, stderr);
      const result = JSON.parse(stdout) as {
        message: string;
        name: string;
        ms: number;
        next: boolean;
      };
      assert.equal(
        result.message,
        'extraction task of 400 texts timed out after 0.5 s in the model; ' +
          'raise taskTimeoutSeconds (UIE_TASK_TIMEOUT_SECONDS) for a model or machine this slow',
      );
      // A plain Error, so that callers retry a timeout in the model.
      assert.equal(result.name, 'Error');
      assert.ok(result.ms > 500, `failed after ${result.ms} ms`);
      assert.equal(result.next, true);
    },
  );
});

describe('when extract meets a task that never returns', () => {
  it(
    'writes an error line for its document alone',
    { timeout: 120_000 },
    async () => {
      const csv = join(dir, 'docs.csv');
      writeFileSync(
        csv,
        [
          'id,text',
          'a,1998年3月5日，张三在北京市工作。',
          'b,李四在上海市开了公司。',
          'c,【卡死】2001年王五搬到了深圳市。',
          'd,赵六在杭州市。',
          'e,2020年1月周七去了广州市。',
        ].join('\n') + '\n',
      );
      const settings = loadSettings(
        { plugins: ['time', LOOP_PLUGIN], schema: SCHEMA, attempts: 2 },
        {},
      );
      const folder = readModelFolder(modelPath(settings));
      const pool = await startPool(2, 1000);
      const engine = {
        pool,
        manifest: folder.manifest,
        chunkLength: chunkLengthFor(
          folder.manifest.max_seq_len,
          settings.schema,
          settings.chunkChars,
        ),
        settings,
        untrained: () => [],
      };
      const out = join(dir, 'out.jsonl');
      try {
        const summary = await extractFile(
          engine,
          csv,
          out,
          join(dir, 'out.rejects.jsonl'),
          {},
          pino({ level: 'silent' }),
        );
        assert.equal(summary.documents, 5);
        assert.equal(summary.failed, 1);
      } finally {
        await pool.close();
      }

      const lines = readJsonl<Line>(out);
      assert.deepEqual(
        lines.map((l) => l.id),
        ['a', 'b', 'c', 'd', 'e'],
      );
      assert.match(
        lines[2].error ?? '',
        /^PluginTimeoutError: extraction task of 1 text timed out after 1 s in rule plugin /,
      );
      for (const line of [lines[0], lines[1], lines[3], lines[4]]) {
        assert.equal(line.error, undefined, JSON.stringify(line));
      }
      assert.ok(lines[0].entities.some((e) => e.value === '1998-03-05'));
    },
  );
});
