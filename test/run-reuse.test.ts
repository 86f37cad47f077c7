import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { Redis } from 'ioredis';

import { partsDir, readParts } from '../src/output/part-files.js';
import { isJobOfRun } from '../src/producer/enqueue.js';
import { RunStore } from '../src/queue/run-store.js';
import {
  deletePrefix,
  readJsonl,
  REDIS_URL,
  runCli,
  runCliOk,
  startCli,
  tempDir,
  uniquePrefix,
  type CliResult,
} from './helpers.js';

interface Line {
  id: string;
  entities: { label: string; text: string; start: number; end: number }[];
  error?: string;
}

interface RunStatus {
  run: string;
  documents: number;
  chunks: number;
  done: number;
  rejected: number;
}

interface Status {
  jobs: Record<string, number>;
  runs: RunStatus[];
}

const QUEUE = 'uie-batch';
const WORK = ['work', '--threads', '1', '--exit-when-drained'];

/** Writes a CSV of `id,text` rows. */
function writeCsv(path: string, rows: [string, string][]): void {
  const lines = rows.map(([id, text]) => `${id},${text}`);
  writeFileSync(path, ['id,text', ...lines].join('\n') + '\n');
}

/** Rows with ids d1..dN and a text built from the row number. */
function numberedRows(count: number, text: (i: number) => string) {
  return Array.from({ length: count }, (_, i): [string, string] => [
    `d${i + 1}`,
    text(i + 1),
  ]);
}

async function status(
  env: Record<string, string>,
  run: string,
): Promise<{ jobs: Record<string, number>; run: RunStatus }> {
  const result = await runCli(['status', '--run', run, '--json'], env);
  assert.equal(result.code, 0, result.stderr);
  const parsed = JSON.parse(result.stdout) as Status;
  return { jobs: parsed.jobs, run: parsed.runs[0] };
}

/** Runs `extract` on a CSV and returns its lines, the reference for exports. */
async function extracted(
  csv: string,
  env: Record<string, string>,
): Promise<Line[]> {
  const out = `${csv}.extract.jsonl`;
  await runCliOk(['extract', csv, '-o', out, '--threads', '1'], env);
  return readJsonl<Line>(out);
}

/** Exports a run and returns its lines. */
async function exported(
  env: Record<string, string>,
  run: string,
  dir: string,
): Promise<Line[]> {
  const out = join(dir, `${run}-${Date.now()}.jsonl`);
  await runCliOk(['export', '--run', run, '-o', out], env);
  return readJsonl<Line>(out);
}

/** Polls a run's stats field until it reaches min. */
async function waitForStat(
  prefix: string,
  run: string,
  field: string,
  min: number,
): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    const key = `${prefix}:${QUEUE}:uie:run:${run}:stats`;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (Number(await redis.hget(key, field)) >= min) return;
      await delay(50);
    }
    throw new Error(`run ${run} did not reach ${field} ${min} in 120 s`);
  } finally {
    redis.disconnect();
  }
}

function busyMessage(run: string, pid: number | undefined): string {
  return (
    `uie-batch: run ${run} is being enqueued by another producer ` +
    `(pid ${pid} on host ${hostname()}); wait for it to finish and run this command again. ` +
    'If that producer was killed, its lock expires 60 s after it last renewed it'
  );
}

describe('when a forgotten run is enqueued again', () => {
  const prefix = uniquePrefix('reuse');
  const dir = tempDir('reuse');
  const results = join(dir, 'results');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: results };

  after(() => deletePrefix(prefix));

  it('exports the new text after forget', async () => {
    const c1 = join(dir, 'c1.csv');
    const c2 = join(dir, 'c2.csv');
    writeCsv(c1, [
      ['1', '张伟在北京大学读书。'],
      ['2', '王芳在清华大学工作。'],
    ]);
    writeCsv(c2, [
      ['1', '昨天李娜去了上海市。'],
      ['2', '赵磊在武汉大学任教。'],
    ]);
    await runCliOk(['enqueue', c1, '--run', 'fy'], env);
    await runCliOk(WORK, env);
    await runCliOk(['forget', '--run', 'fy'], env);

    const queued = await runCliOk(['enqueue', c2, '--run', 'fy'], env);
    assert.match(queued.stderr, /2 documents, 2 chunks in 1 jobs queued/);
    await runCliOk(WORK, env);

    const { run } = await status(env, 'fy');
    assert.equal(run.documents, 2);
    assert.equal(run.done, 2);
    assert.deepEqual(await exported(env, 'fy', dir), await extracted(c2, env));
  });

  it('exports the new text after forget --force mid-run', async () => {
    const count = 200;
    const c1 = join(dir, 'force1.csv');
    const c2 = join(dir, 'force2.csv');
    writeCsv(
      c1,
      numberedRows(count, (i) => `第${i}号：张伟在北京大学读书。`),
    );
    writeCsv(
      c2,
      numberedRows(count, (i) => `第${i}号：昨天李娜去了上海市。`),
    );
    const small = { ...env, UIE_CHUNKS_PER_JOB: '1' };
    await runCliOk(['enqueue', c1, '--run', 'ff'], small);
    const worker = startCli(WORK, small);
    await waitForStat(prefix, 'ff', 'done', 10);
    // Stopped so that the run still has waiting and active jobs when it is
    // forgotten and queued again; the active ones finish after that.
    worker.child.kill('SIGSTOP');
    let forgot: CliResult;
    let queued: CliResult;
    try {
      forgot = await runCliOk(['forget', '--run', 'ff', '--force'], small);
      queued = await runCliOk(['enqueue', c2, '--run', 'ff'], small);
    } finally {
      worker.child.kill('SIGCONT');
    }
    assert.match(forgot.stderr, /waiting jobs removed/);
    assert.match(queued.stderr, /200 documents, 200 chunks in 200 jobs/);
    const second = await runCli(WORK, small);
    assert.equal(second.code, 0, second.stderr);
    const first = await worker.result;
    assert.equal(first.code, 0, first.stderr);

    const { run } = await status(env, 'ff');
    assert.equal(run.documents, count);
    assert.equal(run.done, count);
    assert.deepEqual(await exported(env, 'ff', dir), await extracted(c2, env));
  });

  it('ignores jobs queued before the run was forgotten', async () => {
    const c1 = join(dir, 'stale1.csv');
    const c2 = join(dir, 'stale2.csv');
    writeCsv(
      c1,
      numberedRows(6, (i) => `第${i}号：张伟在北京大学读书。`),
    );
    writeCsv(
      c2,
      numberedRows(6, (i) => `第${i}号：昨天李娜去了上海市。`),
    );
    const small = { ...env, UIE_CHUNKS_PER_JOB: '1' };
    await runCliOk(['enqueue', c1, '--run', 'st'], small);
    // Deletes the records as forget does but leaves the waiting jobs, as
    // when a worker has taken them when the run is forgotten.
    const redis = new Redis(REDIS_URL);
    try {
      await new RunStore(redis, prefix, QUEUE, 'st').clear();
    } finally {
      redis.disconnect();
    }

    await runCliOk(['enqueue', c2, '--run', 'st'], small);
    await runCliOk(WORK, small);

    const { jobs, run } = await status(env, 'st');
    assert.equal(jobs.waiting, 0);
    assert.equal(run.done, 6);
    assert.deepEqual(await exported(env, 'st', dir), await extracted(c2, env));
  });
});

function schemaMessage(run: string, stored: string, requested: string): string {
  return (
    `uie-batch: run ${run} was queued with schema ${stored}, not ${requested}. ` +
    `To add documents to it, pass --schema ${stored}; otherwise pass a new ` +
    `--run name, or delete the run first with uie-batch forget --run ${run}`
  );
}

describe('when a run is enqueued again with another schema', () => {
  const prefix = uniquePrefix('schema');
  const dir = tempDir('schema');
  const results = join(dir, 'results');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: results };
  const people = join(dir, 'people.csv');
  const more = join(dir, 'more.csv');
  const redis = new Redis(REDIS_URL);
  const store = (run: string) => new RunStore(redis, prefix, QUEUE, run);

  before(() => {
    writeCsv(people, [
      ['1', '张伟在北京大学读书。'],
      ['2', '王芳在上海市工作。'],
    ]);
    writeCsv(more, [
      ['3', '李娜昨天去了广州市。'],
      ['4', '赵磊在武汉大学任教。'],
    ]);
  });

  after(async () => {
    redis.disconnect();
    await deletePrefix(prefix);
  });

  it('fails naming both schemas', async () => {
    await runCliOk(['enqueue', people, '--run', 's1', '--schema', '人物'], env);
    const again = await runCli(
      ['enqueue', people, '--run', 's1', '--schema', '地点'],
      env,
    );

    assert.equal(again.code, 1, again.stdout);
    assert.equal(again.stdout, '');
    assert.equal(again.stderr.trim(), schemaMessage('s1', '人物', '地点'));
    assert.deepEqual(await store('s1').schema(), ['人物']);
    const { run } = await status(env, 's1');
    assert.equal(run.documents, 2);
  });

  it('adds documents with the same schema', async () => {
    const repeated = await runCliOk(
      ['enqueue', people, '--run', 's1', '--schema', '人物'],
      env,
    );
    assert.match(repeated.stderr, /: 0 documents, .* 2 already queued/);
    const added = await runCliOk(
      ['enqueue', more, '--run', 's1', '--schema', '人物'],
      env,
    );
    assert.match(added.stderr, /: 2 documents, 2 chunks in 1 jobs queued/);
    const { run } = await status(env, 's1');
    assert.equal(run.documents, 4);
  });

  it('accepts the same labels in another order', async () => {
    await runCliOk(
      ['enqueue', people, '--run', 's2', '--schema', '人物,地点'],
      env,
    );
    const added = await runCliOk(
      ['enqueue', more, '--run', 's2', '--schema', '地点,人物'],
      env,
    );
    assert.match(added.stderr, /: 2 documents/);
    assert.deepEqual(await store('s2').schema(), ['人物', '地点']);
  });

  it('rejects a new file with another schema', async () => {
    // The stored schema is checked before any row is read, so a file whose
    // documents are all new is rejected as a whole.
    await runCliOk(['enqueue', people, '--run', 's3', '--schema', '人物'], env);
    const added = await runCli(
      ['enqueue', more, '--run', 's3', '--schema', '人物,地点'],
      env,
    );
    assert.equal(added.code, 1, added.stdout);
    assert.equal(added.stderr.trim(), schemaMessage('s3', '人物', '人物,地点'));
    const { run } = await status(env, 's3');
    assert.equal(run.documents, 2);
  });

  it('exports the new schema after forget', async () => {
    await runCliOk(['forget', '--run', 's1', '--force'], env);
    assert.equal(
      await redis.exists(`${prefix}:${QUEUE}:uie:run:s1:schema`),
      0,
      'schema key left after forget',
    );
    const queued = await runCliOk(
      ['enqueue', people, '--run', 's1', '--schema', '地点'],
      env,
    );
    assert.match(queued.stderr, /: 2 documents/);
    assert.deepEqual(await store('s1').schema(), ['地点']);
    await runCliOk(WORK, env);

    const labels = new Set(
      (await exported(env, 's1', dir)).flatMap((line) =>
        line.entities.map((e) => e.label),
      ),
    );
    assert.deepEqual([...labels], ['地点']);
  });

  it('stores the schema of a run recorded without one', async () => {
    // A run recorded before runs stored their schema: documents, no schema.
    await store('legacy').record(
      [{ id: 'old', file: '/data/old.csv', line: 2, seq: 0, chunks: 1 }],
      0,
    );
    await store('legacy').reserveSeq(1);
    const first = await runCliOk(
      ['enqueue', people, '--run', 'legacy', '--schema', '人物'],
      env,
    );
    assert.match(first.stderr, /: 2 documents/);
    assert.deepEqual(await store('legacy').schema(), ['人物']);

    const other = await runCli(
      ['enqueue', more, '--run', 'legacy', '--schema', '地点'],
      env,
    );
    assert.equal(other.code, 1, other.stdout);
    assert.equal(other.stderr.trim(), schemaMessage('legacy', '人物', '地点'));
  });
});

describe('when producers enqueue into one run at once', () => {
  const prefix = uniquePrefix('race');
  const dir = tempDir('race');
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: join(dir, 'results'),
    UIE_CHUNKS_PER_JOB: '1',
  };

  after(() => deletePrefix(prefix));

  it('queues each document once from three producers', async () => {
    const csv = join(dir, 'race.csv');
    writeCsv(
      csv,
      numberedRows(2000, (i) => `第${i}号：张伟在北京大学读书。`),
    );
    const producers = await Promise.all(
      [1, 2, 3].map(() => runCli(['enqueue', csv, '--run', 'race'], env)),
    );

    const queuedAll = producers.filter((p) =>
      /: 2000 documents, 2000 chunks in 2000 jobs queued/.test(p.stderr),
    );
    assert.equal(queuedAll.length, 1, JSON.stringify(producers));
    for (const p of producers) {
      if (queuedAll.includes(p)) continue;
      const repeated = /: 0 documents, .* 2000 already queued/.test(p.stderr);
      const busy = /is being enqueued by another producer/.test(p.stderr);
      assert.ok(repeated || busy, JSON.stringify(p));
    }
    const { jobs, run } = await status(env, 'race');
    assert.equal(run.documents, 2000);
    assert.equal(run.chunks, 2000);
    assert.equal(jobs.waiting, 2000);
  });

  it('rejects a second producer while the first runs', async () => {
    const count = 10_000;
    const a = join(dir, 'A.csv');
    const b = join(dir, 'B.csv');
    writeCsv(
      a,
      numberedRows(count, (i) => `第${i}号：张伟在北京。`),
    );
    writeCsv(
      b,
      numberedRows(50, (i) => `第${i}号：李娜在上海。`),
    );

    const first = startCli(['enqueue', a, '--run', 'rc'], env);
    await waitForStat(prefix, 'rc', 'documents', 1);
    // Stopped while it holds the producer lock, so the others start first.
    first.child.kill('SIGSTOP');
    let second: CliResult;
    let forget: CliResult;
    try {
      second = await runCli(['enqueue', b, '--run', 'rc'], env);
      forget = await runCli(['forget', '--run', 'rc', '--force'], env);
    } finally {
      first.child.kill('SIGCONT');
    }
    const done = await first.result;

    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stderr, /10000 documents, 10000 chunks/);
    assert.equal(second.code, 1, second.stdout);
    assert.equal(second.stderr.trim(), busyMessage('rc', first.child.pid));
    assert.equal(forget.code, 1, forget.stdout);
    assert.equal(forget.stderr.trim(), busyMessage('rc', first.child.pid));

    // Every row of B repeats an id of A, so nothing of B is queued.
    const again = await runCli(['enqueue', b, '--run', 'rc'], env);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /: 0 documents, .* 50 rows rejected/);
    assert.match(
      again.stderr,
      /no row was accepted and 50 rows were rejected, so no document/,
    );
    const { run } = await status(env, 'rc');
    assert.equal(run.documents, count);
    assert.equal(run.rejected, 50);
  });
});

describe('when a file with rejected rows is enqueued again', () => {
  const prefix = uniquePrefix('rejects');
  const dir = tempDir('rejects');
  const results = join(dir, 'results');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: results };
  const csv = join(dir, 'bad.csv');
  const rejectsPath = join(results, 'rj', 'rejects.jsonl');

  before(() => {
    writeCsv(csv, [
      ['1', '张伟在北京大学读书。'],
      ['2', ''],
      ['3', '王芳在清华大学工作。'],
      ['1', '赵磊在武汉大学任教。'],
    ]);
  });

  after(() => deletePrefix(prefix));

  it('records each rejected row once', async () => {
    const first = await runCliOk(['enqueue', csv, '--run', 'rj'], env);
    assert.match(first.stderr, /2 documents.* 2 rows rejected\n$/);
    const again = await runCliOk(['enqueue', csv, '--run', 'rj'], env);
    assert.match(
      again.stderr,
      /: 0 documents, .* 2 already queued, 0 rows rejected, 2 already rejected\n$/,
    );

    assert.deepEqual(
      readJsonl<{ line: number }>(rejectsPath).map((r) => r.line),
      [3, 5],
    );
    const { run } = await status(env, 'rj');
    assert.equal(run.rejected, 2);
  });

  it('starts a new rejects file after forget', async () => {
    await runCliOk(['forget', '--run', 'rj', '--force'], env);
    const queued = await runCliOk(['enqueue', csv, '--run', 'rj'], env);
    assert.match(queued.stderr, /2 documents.* 2 rows rejected\n$/);

    assert.equal(readJsonl(rejectsPath).length, 2);
    const files = readdirSync(join(results, 'rj')).filter((f) =>
      /^rejects\..+\.jsonl$/.test(f),
    );
    assert.equal(files.length, 1, files.join(', '));
    assert.equal(readJsonl(join(results, 'rj', files[0])).length, 2);
    const { run } = await status(env, 'rj');
    assert.equal(run.rejected, 2);
  });
});

describe('isJobOfRun', () => {
  const hash = 'a'.repeat(32);

  it('matches job ids with and without a generation', () => {
    assert.equal(isJobOfRun(`r.1.${hash}`, 'r.1'), true);
    assert.equal(isJobOfRun(`r.1.42-${hash}`, 'r.1'), true);
  });

  it('does not match a run whose name extends another', () => {
    assert.equal(isJobOfRun(`r.1.${hash}`, 'r'), false);
    assert.equal(isJobOfRun(`r.1.42-${hash}`, 'r'), false);
    assert.equal(isJobOfRun(`r.42-${hash}`, 'r.42'), false);
  });
});

describe('RunStore.openGeneration', () => {
  const prefix = uniquePrefix('generation');
  const redis = new Redis(REDIS_URL);
  const store = (run: string) => new RunStore(redis, prefix, QUEUE, run);
  const record = { id: 'a', file: '/data/a.csv', line: 2, seq: 0, chunks: 1 };

  after(async () => {
    redis.disconnect();
    await deletePrefix(prefix);
  });

  it('keeps the generation of a run', async () => {
    const first = await store('g1').openGeneration();
    assert.equal(typeof first, 'number');
    assert.equal(await store('g1').openGeneration(), first);
    assert.equal(await store('g1').generation(), first);
  });

  it('creates a new generation after clear', async () => {
    const first = await store('g2').openGeneration();
    await store('g2').record([record], 0);
    await store('g2').clear();
    assert.equal(await store('g2').generation(), undefined);
    const second = await store('g2').openGeneration();
    assert.notEqual(second, undefined);
    assert.notEqual(second, first);
  });

  it('gives none to a run recorded without one', async () => {
    await store('old').record([record], 0);
    assert.equal(await store('old').openGeneration(), undefined);
  });
});

describe('RunStore.storeSchema', () => {
  const prefix = uniquePrefix('store-schema');
  const redis = new Redis(REDIS_URL);
  const store = (run: string) => new RunStore(redis, prefix, QUEUE, run);
  const record = { id: 'a', file: '/data/a.csv', line: 2, seq: 0, chunks: 1 };

  after(async () => {
    redis.disconnect();
    await deletePrefix(prefix);
  });

  it('keeps the first schema stored', async () => {
    assert.equal(await store('k').schema(), undefined);
    assert.deepEqual(await store('k').storeSchema(['人物']), ['人物']);
    assert.deepEqual(await store('k').storeSchema(['地点']), ['人物']);
    assert.deepEqual(await store('k').schema(), ['人物']);
  });

  it('deletes the schema on clear', async () => {
    await store('c').storeSchema(['人物']);
    await store('c').record([record], 0);
    await store('c').clear();
    assert.equal(await store('c').schema(), undefined);
    assert.equal(await store('c').exists(), false);
  });

  it('expires the schema with an exported run', async () => {
    await store('e').storeSchema(['人物']);
    await store('e').record([record], 5);
    await store('e').expireAfterExport(30);
    const ttl = await redis.ttl(`${prefix}:${QUEUE}:uie:run:e:schema`);
    assert.ok(ttl > 4 * 24 * 3600, `TTL ${ttl} s`);
  });
});

describe('readParts', () => {
  const dir = tempDir('parts');
  const parts = partsDir(dir, 'r');
  const line = (id: string) =>
    JSON.stringify({ id, k: 0, range: { start: 0, end: 1 }, entities: [] });

  before(() => {
    mkdirSync(parts, { recursive: true });
    writeFileSync(join(parts, 'h.x-1-abc.jsonl'), line('legacy') + '\n');
    writeFileSync(join(parts, 'h.x-1-abc.42.jsonl'), line('g42') + '\n');
    writeFileSync(join(parts, 'h.x-2-abd.42.jsonl'), line('g42b') + '\n');
    writeFileSync(join(parts, 'h.x-1-abc.7.jsonl'), line('g7') + '\n');
  });

  async function ids(generation: number | undefined): Promise<string[]> {
    const out: string[] = [];
    for await (const r of readParts(dir, 'r', generation)) out.push(r.id);
    return out;
  }

  it('reads only the files of one generation', async () => {
    assert.deepEqual(await ids(42), ['g42', 'g42b']);
    assert.deepEqual(await ids(7), ['g7']);
  });

  it('reads files without a generation for a run without one', async () => {
    assert.deepEqual(await ids(undefined), ['legacy']);
  });
});

describe('RunStore.addReject', () => {
  const prefix = uniquePrefix('add-reject');
  const redis = new Redis(REDIS_URL);
  const store = new RunStore(redis, prefix, QUEUE, 'r');
  const record = { id: 'a', file: '/data/a.csv', line: 2, seq: 0, chunks: 1 };

  after(async () => {
    redis.disconnect();
    await deletePrefix(prefix);
  });

  it('records a row of a file once', async () => {
    assert.equal(await store.hasReject('/data/a.csv', 'r3'), false);
    await store.addReject('/data/a.csv', 'r3');
    assert.equal(await store.hasReject('/data/a.csv', 'r3'), true);
    assert.equal(await store.hasReject('/data/a.csv', 'r4'), false);
    assert.equal(await store.hasReject('/data/b.csv', 'r3'), false);
    assert.equal((await store.stats()).rejected, 1);
  });

  it('expires with an exported run', async () => {
    const exported = new RunStore(redis, prefix, QUEUE, 'done');
    await exported.record([record], 5);
    await exported.expireAfterExport(30);
    await exported.addReject('/data/a.csv', 'r5');
    const ttl = await redis.ttl(`${prefix}:${QUEUE}:uie:run:done:rejects`);
    assert.ok(ttl > 4 * 24 * 3600, `TTL ${ttl} s`);
  });
});
