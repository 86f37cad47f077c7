import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Redis } from 'ioredis';

import { runChild } from './child-process.js';
import { ROOT } from './options.js';

const BIN = join(ROOT, 'bin/uie-batch.js');

/** Settings shared by every CLI child of one bench run. */
export interface CliContext {
  /** Folder for outputs and run results; deleted by the caller. */
  dir: string;
  modelDir: string;
  schema: string[];
  redisUrl: string;
  /** Redis key prefix of this bench run only. */
  prefix: string;
  timeoutSeconds: number;
}

/** Wall times of the queue path, in milliseconds. */
export interface QueueTimes {
  enqueueMs: number;
  workMs: number;
  exportMs: number;
  totalMs: number;
}

function cli(ctx: CliContext, args: string[]) {
  return runChild(process.execPath, [BIN, ...args], {
    timeoutSeconds: ctx.timeoutSeconds,
    env: {
      LOG_LEVEL: 'warn',
      REDIS_URL: ctx.redisUrl,
      UIE_PREFIX: ctx.prefix,
      UIE_OUTPUT_DIR: join(ctx.dir, 'results'),
      UIE_MODEL_DIR: ctx.modelDir,
    },
  });
}

/**
 * Times `extract CSV --threads N` from spawn to exit.
 *
 * @throws Error when the output does not have one line per input row
 */
export async function timeExtract(
  ctx: CliContext,
  csv: string,
  rows: number,
  threads: number,
): Promise<number> {
  const output = join(ctx.dir, `extract-${threads}.jsonl`);
  const args = ['extract', csv, '-o', output, '--threads', String(threads)];
  const result = await cli(ctx, [...args, '--schema', ctx.schema.join(',')]);
  expectLines(output, rows);
  return result.wallMs;
}

/**
 * Times enqueue, `work --threads 2 --exit-when-drained` and export of one
 * run, then deletes the prefix's keys so the next run starts empty.
 */
export async function timeQueue(
  ctx: CliContext,
  csv: string,
  rows: number,
  run: string,
): Promise<QueueTimes> {
  const output = join(ctx.dir, `${run}.jsonl`);
  const schema = ['--schema', ctx.schema.join(',')];
  try {
    const enqueue = await cli(ctx, ['enqueue', csv, '--run', run, ...schema]);
    const work = await cli(ctx, [
      'work',
      '--threads',
      '2',
      '--exit-when-drained',
    ]);
    const exported = await cli(ctx, ['export', '--run', run, '-o', output]);
    expectLines(output, rows);
    const times = {
      enqueueMs: enqueue.wallMs,
      workMs: work.wallMs,
      exportMs: exported.wallMs,
    };
    return {
      ...times,
      totalMs: times.enqueueMs + times.workMs + times.exportMs,
    };
  } finally {
    await deletePrefix(ctx.redisUrl, ctx.prefix);
  }
}

function expectLines(path: string, rows: number): void {
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean).length;
  if (lines !== rows) {
    throw new Error(
      `${path} has ${lines} lines, expected one per input row (${rows})`,
    );
  }
}

function localRedis(url: string): Redis {
  return new Redis(url, {
    connectTimeout: 2000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    lazyConnect: true,
  });
}

/**
 * Returns whether a Redis at url replies to PING. Connecting and the command
 * each time out after two seconds.
 */
export async function redisAnswers(url: string): Promise<boolean> {
  const redis = localRedis(url);
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key under prefix, with SCAN MATCH prefix:* and DEL. */
export async function deletePrefix(
  url: string,
  prefix: string,
): Promise<number> {
  const redis = localRedis(url);
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(
        cursor,
        'MATCH',
        `${prefix}:*`,
        'COUNT',
        1000,
      );
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}
