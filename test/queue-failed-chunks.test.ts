import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Redis } from 'ioredis';

import { partsDir } from '../src/output/part-files.js';
import { RunStore, type ChunkFailure } from '../src/queue/run-store.js';
import {
  deletePrefix,
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
