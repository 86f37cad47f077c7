import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Redis } from 'ioredis';

import {
  BIN,
  csvField,
  deletePrefix,
  newsParagraphs,
  readJsonl,
  REDIS_URL,
  ROOT,
  runCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';

interface Line {
  id: string;
  entities: unknown[];
  error?: string;
}

const paragraphs = newsParagraphs(600);

function startWorker(
  env: Record<string, string>,
  args: string[] = [],
): ChildProcess {
  return spawn(process.execPath, [BIN, 'work', '--threads', '1', ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve(child.exitCode);
    else child.on('exit', (code) => resolve(code));
  });
}

/** Polls the run's done-chunk counter until it reaches at least min. */
async function waitForDone(
  prefix: string,
  run: string,
  min: number,
): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    const key = `${prefix}:uie-batch:uie:run:${run}:stats`;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (Number(await redis.hget(key, 'done')) >= min) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`run ${run} did not reach ${min} done chunks in 120 s`);
  } finally {
    redis.disconnect();
  }
}

describe(
  'worker faults',
  { skip: paragraphs ? false : 'corpora not found' },
  () => {
    const prefix = uniquePrefix('faults');
    const dir = tempDir('faults');
    const csv = join(dir, 'news.csv');
    const env = {
      UIE_PREFIX: prefix,
      UIE_OUTPUT_DIR: join(dir, 'results'),
      UIE_CHUNKS_PER_JOB: '2',
    };
    let reference: Line[] = [];

    before(async () => {
      const rows = paragraphs!.map((p, i) => `n${i + 1},${csvField(p)}`);
      writeFileSync(csv, ['id,text', ...rows].join('\n') + '\n');
      const out = join(dir, 'reference.jsonl');
      const result = await runCli(
        ['extract', csv, '-o', out, '--threads', '1'],
        env,
      );
      assert.equal(result.code, 0, result.stderr);
      reference = readJsonl<Line>(out);
    });

    after(() => deletePrefix(prefix));

    it('finishes active jobs on SIGTERM and exits 0', async () => {
      const run = 'sigterm';
      assert.equal((await runCli(['enqueue', csv, '--run', run], env)).code, 0);
      const worker = startWorker({ ...env, UIE_SHUTDOWN_GRACE_SECONDS: '20' });
      let stderr = '';
      worker.stderr!.on('data', (d) => (stderr += d));
      await waitForDone(prefix, run, 10);
      worker.kill('SIGTERM');
      assert.equal(await exited(worker), 0, stderr);

      const rest = await runCli(
        ['work', '--threads', '1', '--exit-when-drained'],
        env,
      );
      assert.equal(rest.code, 0, rest.stderr);
      const out = join(dir, 'sigterm.jsonl');
      assert.equal(
        (await runCli(['export', '--run', run, '-o', out], env)).code,
        0,
      );
      assert.deepEqual(readJsonl<Line>(out), reference);
    });

    it('loses nothing when a worker is killed with SIGKILL', async () => {
      const run = 'sigkill';
      assert.equal((await runCli(['enqueue', csv, '--run', run], env)).code, 0);
      const victim = startWorker(env);
      await waitForDone(prefix, run, 10);
      victim.kill('SIGKILL');
      await exited(victim);

      // The survivor takes over the victim's jobs once their locks expire.
      const survivor = await runCli(
        ['work', '--threads', '1', '--exit-when-drained'],
        env,
      );
      assert.equal(survivor.code, 0, survivor.stderr);
      const out = join(dir, 'sigkill.jsonl');
      const exported = await runCli(['export', '--run', run, '-o', out], env);
      assert.equal(exported.code, 0, exported.stderr);
      assert.deepEqual(readJsonl<Line>(out), reference);
    });
  },
);

describe('a document that always fails', () => {
  const prefix = uniquePrefix('always-fails');
  const dir = tempDir('always-fails');
  after(() => deletePrefix(prefix));

  // With one chunk per job, the bad chunk's job fails. With three, the
  // failed job's chunks run one by one, so only the bad chunk fails.
  for (const perJob of ['1', '3']) {
    it(`gets an error line, ${perJob} per job`, async () => {
      await failOneDocument(perJob);
    });
  }

  async function failOneDocument(perJob: string): Promise<void> {
    // Workers with a model that takes shorter texts than the producer planned
    // for reject the long chunk on every attempt.
    const shortModel = join(dir, `short-model-${perJob}`);
    cpSync(join(ROOT, 'models/tiny'), shortModel, { recursive: true });
    const manifestPath = join(shortModel, 'model.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    manifest.max_seq_len = 64;
    writeFileSync(manifestPath, JSON.stringify(manifest));

    const csv = join(dir, `docs-${perJob}.csv`);
    const long = '北京市'.repeat(40);
    writeFileSync(csv, `id,text\na,张三在上海。\nb,${long}\nc,李四在杭州。\n`);
    const env = {
      UIE_PREFIX: prefix,
      UIE_OUTPUT_DIR: join(dir, 'results'),
      UIE_CHUNKS_PER_JOB: perJob,
    };
    const run = `r${perJob}`;
    assert.equal((await runCli(['enqueue', csv, '--run', run], env)).code, 0);

    const worker = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      {
        ...env,
        UIE_MODEL_DIR: shortModel,
      },
    );
    assert.equal(worker.code, 0, worker.stderr);

    const out = join(dir, `out-${perJob}.jsonl`);
    const exported = await runCli(['export', '--run', run, '-o', out], env);
    assert.equal(exported.code, 0, exported.stderr);
    const lines = readJsonl<Line>(out);
    assert.deepEqual(
      lines.map((l) => l.id),
      ['a', 'b', 'c'],
    );
    assert.equal(lines[0].error, undefined);
    assert.match(
      lines[1].error ?? '',
      /the model takes at most \d+ beside the prompts/,
    );
    assert.equal(lines[2].error, undefined);

    const status = await runCli(['status', '--run', run, '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    const [counts] = (
      JSON.parse(status.stdout) as { runs: { failed: number; done: number }[] }
    ).runs;
    assert.equal(counts.failed, 1);
    assert.equal(counts.done, 2);
  }
});
