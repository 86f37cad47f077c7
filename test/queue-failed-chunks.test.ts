import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Redis } from 'ioredis';

import { partsDir } from '../src/output/part-files.js';
import { RunStore, type ChunkFailure } from '../src/queue/run-store.js';
import {
  countFindCalls,
  deletePrefix,
  logLines,
  MARKER_PLUGIN,
  readJsonl,
  REDIS_URL,
  runCli,
  runCliOk,
  tempDir,
  uniquePrefix,
  type CliResult,
} from './helpers.js';

interface Line {
  id: string;
  entities: unknown[];
  error?: string;
}

interface RunStatus {
  documents: number;
  chunks: number;
  done: number;
  failed: number;
}

const WORK = ['work', '--threads', '1', '--exit-when-drained'];
const ROWS = ['1,张三在北京。', '2,李四在上海。', '3,王五在广州。'];

async function runStatus(
  env: Record<string, string>,
  run: string,
): Promise<RunStatus> {
  const result = await runCliOk(['status', '--run', run, '--json'], env);
  return (JSON.parse(result.stdout) as { runs: RunStatus[] }).runs[0];
}

/** Returns the queue's count of jobs that failed for good. */
async function failedJobs(env: Record<string, string>): Promise<number> {
  const result = await runCliOk(['status', '--json'], env);
  return (JSON.parse(result.stdout) as { jobs: { failed: number } }).jobs
    .failed;
}

describe('when a rule plugin fails on some chunks of a job', () => {
  const dir = tempDir('queue-plugin-failures');
  const prefixes: string[] = [];
  const error = `Error: rule plugin "marker" (${MARKER_PLUGIN}) failed: stock table not loaded`;

  /** Settings of a queue of its own, with jobs of 4 chunks. */
  function queueEnv(name: string): Record<string, string> {
    const prefix = uniquePrefix(`queue-plugin-${name}`);
    prefixes.push(prefix);
    return {
      UIE_PREFIX: prefix,
      UIE_OUTPUT_DIR: join(dir, `results-${name}`),
      UIE_CHUNKS_PER_JOB: '4',
      UIE_PLUGINS: MARKER_PLUGIN,
      UIE_SCHEMA: '人物,股票',
      UIE_TEST_FIND_LOG: join(dir, `find-${name}.log`),
    };
  }

  function writeCsv(name: string, rows: string[]): string {
    const csv = join(dir, `${name}.csv`);
    writeFileSync(csv, ['id,text', ...rows].join('\n') + '\n');
    return csv;
  }

  after(async () => {
    for (const prefix of prefixes) await deletePrefix(prefix);
  });

  it('keeps the other chunks', async () => {
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
    const env = queueEnv('some');
    const clean = writeCsv(
      'clean',
      rows.filter((r) => !r.includes('【抛出】')),
    );
    const referenceOut = join(dir, 'reference.jsonl');
    await runCliOk(['extract', clean, '-o', referenceOut, '--threads', '1'], {
      ...env,
      UIE_TEST_FIND_LOG: join(dir, 'find-reference.log'),
    });
    const reference = readJsonl<Line>(referenceOut);

    await runCliOk(['enqueue', writeCsv('some', rows), '--run', 'r1'], env);
    const worker = await runCliOk(WORK, env);
    const out = join(dir, 'some.jsonl');
    await runCliOk(['export', '--run', 'r1', '-o', out], env);

    const lines = new Map(readJsonl<Line>(out).map((l) => [l.id, l]));
    for (const line of reference) {
      assert.deepEqual(lines.get(line.id), line, `document ${line.id}`);
    }
    assert.deepEqual(lines.get('c'), { id: 'c', entities: [], error });
    assert.deepEqual(lines.get('g'), { id: 'g', entities: [], error });
    const status = await runStatus(env, 'r1');
    assert.equal(status.done, 6);
    assert.equal(status.failed, 2);
    assert.equal(await failedJobs(env), 0);
    const calls = countFindCalls(env.UIE_TEST_FIND_LOG);
    assert.deepEqual(
      rows.map((r) => calls.get(r.slice(2))),
      rows.map(() => 1),
    );
    const logged = logLines<{ msg: string; error?: string }>(worker.stderr);
    assert.ok(
      logged.every((l) => l.msg !== 'job failed'),
      worker.stderr,
    );
    const partial = logged.filter(
      (l) =>
        l.msg ===
        'chunks failed for good; the other chunks of the job have results',
    );
    assert.deepEqual(
      partial.map((l) => l.error),
      [error, error],
    );
    const stacks = logLines<{ msg: string; stack: string }>(
      worker.stderr,
    ).filter(
      (l) =>
        l.msg ===
        'rule plugin failed on a text; the stack shows where it threw',
    );
    assert.equal(stacks.length, 1, worker.stderr);
    assert.match(stacks[0].stack, /marker-plugin\.mjs:\d+/);
  });

  it('fails a job without retries', async () => {
    const rows = [
      'a,【抛出】张三买入600519。',
      'b,【抛出】李四卖出000001。',
      'c,【抛出】王五买入600036。',
    ];
    const env = queueEnv('all');

    await runCliOk(['enqueue', writeCsv('all', rows), '--run', 'r2'], env);
    const worker = await runCliOk(WORK, env);
    const out = join(dir, 'all.jsonl');
    const exported = await runCli(['export', '--run', 'r2', '-o', out], env);

    assert.equal(exported.code, 1, exported.stderr);
    assert.match(exported.stderr, /every document of run r2 failed/);
    assert.deepEqual(readJsonl<Line>(out), [
      { id: 'a', entities: [], error },
      { id: 'b', entities: [], error },
      { id: 'c', entities: [], error },
    ]);
    const status = await runStatus(env, 'r2');
    assert.equal(status.done, 0);
    assert.equal(status.failed, 3);
    assert.equal(await failedJobs(env), 1);
    const calls = countFindCalls(env.UIE_TEST_FIND_LOG);
    assert.deepEqual(
      rows.map((r) => calls.get(r.slice(2))),
      [1, 1, 1],
    );
    const failed = logLines<{ msg: string; err: { message: string } }>(
      worker.stderr,
    ).filter((l) => l.msg === 'job failed');
    assert.deepEqual(
      failed.map((l) => l.err.message),
      [
        `a rule plugin failed on all 3 chunks of the job; the first error: ${error}`,
      ],
    );
  });
});

describe('when every part-file write of a run fails', () => {
  const dir = tempDir('queue-failed-chunks');
  const prefix = uniquePrefix('queue-failed-chunks');
  const results = join(dir, 'results');
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: results,
    UIE_CHUNKS_PER_JOB: '1',
    UIE_ATTEMPTS: '1',
  };
  const csv = join(dir, 'docs.csv');
  let reference: Line[] = [];

  before(async () => {
    writeFileSync(csv, ['id,text', ...ROWS].join('\n') + '\n');
    const out = join(dir, 'reference.jsonl');
    await runCliOk(['extract', csv, '-o', out, '--threads', '1'], env);
    reference = readJsonl<Line>(out);
  });

  after(() => deletePrefix(prefix));

  /** Makes the run's parts folder a file, so no part file can be written. */
  function breakParts(run: string): void {
    mkdirSync(join(results, run), { recursive: true });
    rmSync(partsDir(results, run), { recursive: true, force: true });
    writeFileSync(partsDir(results, run), 'not a folder');
  }

  it('retries failed documents on enqueue', async () => {
    await runCliOk(['enqueue', csv, '--run', 'r1'], env);
    breakParts('r1');
    await runCliOk(WORK, env);
    const failed = await runStatus(env, 'r1');
    assert.equal(failed.done, 0);
    assert.equal(failed.failed, 3);

    const failedOut = join(dir, 'r1-failed.jsonl');
    // Every document failed, so export writes their lines and exits 1.
    const exported = await runCli(
      ['export', '--run', 'r1', '-o', failedOut],
      env,
    );
    assert.equal(exported.code, 1, exported.stderr);
    assert.match(exported.stderr, /every document of run r1 failed/);
    const lines = readJsonl<Line>(failedOut);
    assert.deepEqual(
      lines.map((l) => l.id),
      ['1', '2', '3'],
    );
    for (const line of lines) {
      assert.match(line.error ?? '', /^cannot write part file /);
    }

    rmSync(partsDir(results, 'r1'));
    const again = await runCliOk(['enqueue', csv, '--run', 'r1'], env);
    assert.match(
      again.stderr,
      /: 0 documents, 3 chunks in 3 jobs queued; 3 already queued \(3 of them had failed chunks, queued again\), 0 rows rejected\n$/,
    );
    assert.equal((await runStatus(env, 'r1')).failed, 0);
    await runCliOk(WORK, env);

    const out = join(dir, 'r1.jsonl');
    await runCliOk(['export', '--run', 'r1', '-o', out], env);
    assert.deepEqual(readJsonl<Line>(out), reference);
    const status = await runStatus(env, 'r1');
    assert.equal(status.done, 3);
    assert.equal(status.failed, 0);
  });

  it('queues nothing once all succeeded', async () => {
    const again = await runCliOk(['enqueue', csv, '--run', 'r1'], env);
    assert.match(
      again.stderr,
      /: 0 documents, 0 chunks in 0 jobs queued; 3 already queued, 0 rows rejected\n$/,
    );
  });

  it('retries chunks that failed twice', async () => {
    await runCliOk(['enqueue', csv, '--run', 'r2'], env);
    breakParts('r2');
    await runCliOk(WORK, env);
    const first = await runCliOk(['enqueue', csv, '--run', 'r2'], env);
    assert.match(first.stderr, /: 0 documents, 3 chunks in 3 jobs queued/);
    await runCliOk(WORK, env);
    assert.equal((await runStatus(env, 'r2')).failed, 3);

    rmSync(partsDir(results, 'r2'));
    const second = await runCliOk(['enqueue', csv, '--run', 'r2'], env);
    assert.match(second.stderr, /: 0 documents, 3 chunks in 3 jobs queued/);
    await runCliOk(WORK, env);
    const out = join(dir, 'r2.jsonl');
    await runCliOk(['export', '--run', 'r2', '-o', out], env);
    assert.deepEqual(readJsonl<Line>(out), reference);
  });
});

describe('RunStore failures', () => {
  const prefix = uniquePrefix('queue-failures');
  let redis: Redis;
  const store = (run: string) => new RunStore(redis, prefix, 'q', run);
  const range = { start: 0, end: 4, keepFrom: 0, keepTo: 4 };
  const failure = (id: string, k: number, job: string): ChunkFailure => ({
    id,
    k,
    range,
    error: 'Error: model failed',
    job,
  });

  before(async () => {
    redis = new Redis(REDIS_URL);
  });

  after(async () => {
    redis.disconnect();
    await deletePrefix(prefix);
  });

  /** Opens a run with one document of two chunks. */
  async function openRun(run: string): Promise<number | undefined> {
    const generation = await store(run).openGeneration();
    await store(run).record(
      [{ id: 'a', file: '/in.csv', line: 2, seq: 0, chunks: 2 }],
      30,
    );
    return generation;
  }

  it('counts a chunk once', async () => {
    const generation = await openRun('twice');
    await store('twice').recordFailures([failure('a', 1, 'j1')], generation);
    await store('twice').recordFailures([failure('a', 1, 'j2')], generation);

    assert.equal((await store('twice').stats()).failedChunks, 1);
    const found = await store('twice').failedChunks([{ id: 'a', chunks: 2 }]);
    assert.deepEqual(
      found.map(({ id, k, job }) => ({ id, k, job })),
      [{ id: 'a', k: 1, job: 'j2' }],
    );
  });

  it('ignores another generation', async () => {
    const generation = await openRun('old-job');
    await store('old-job').recordFailures(
      [failure('a', 0, 'j1')],
      generation! + 1,
    );

    assert.equal((await store('old-job').stats()).failedChunks, undefined);
    const found = await store('old-job').failedChunks([{ id: 'a', chunks: 2 }]);
    assert.deepEqual(found, []);
  });

  it('keeps a failure recorded anew', async () => {
    const generation = await openRun('race');
    await store('race').recordFailures(
      [failure('a', 0, 'j1'), failure('a', 1, 'j1')],
      generation,
    );
    const found = await store('race').failedChunks([{ id: 'a', chunks: 2 }]);
    // The retry of chunk 1 fails before the producer clears what it read.
    await store('race').recordFailures([failure('a', 1, 'j2')], generation);

    assert.equal(await store('race').clearFailures(found), 1);
    const left = await store('race').failedChunks([{ id: 'a', chunks: 2 }]);
    assert.deepEqual(
      left.map(({ k, job }) => ({ k, job })),
      [{ k: 1, job: 'j2' }],
    );
    assert.equal((await store('race').stats()).failedChunks, 1);
  });

  it('deletes failures on clear', async () => {
    const generation = await openRun('forgotten');
    await store('forgotten').recordFailures(
      [failure('a', 0, 'j1')],
      generation,
    );
    await store('forgotten').clear();
    assert.equal(await store('forgotten').exists(), false);
  });
});
