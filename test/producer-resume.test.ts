import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { Redis } from 'ioredis';

import {
  deletePrefix,
  readJsonl,
  REDIS_URL,
  runCli,
  startCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';

interface Reject {
  file: string;
  line: number;
  id: string;
  reason: string;
}

const ROWS = 30_000;
// Rows that repeat an id: one in the same batch of 500 rows as the first
// row with the id, one far behind it, both read after the kill.
const DUPLICATES = new Map([
  [ROWS - 10, `d${ROWS - 20}`],
  [ROWS - 5, 'd1'],
]);

describe('when a killed producer is run again', () => {
  const dir = tempDir('producer-resume');
  const prefix = uniquePrefix('producer-resume');
  const results = join(dir, 'results');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: results };
  const statsKey = `${prefix}:uie-batch:uie:run:big:stats`;

  after(() => deletePrefix(prefix));

  it('counts queued rows as queued', async () => {
    const csv = join(dir, 'big.csv');
    const rows = Array.from({ length: ROWS }, (_, i) => {
      const id = DUPLICATES.get(i + 1) ?? `d${i + 1}`;
      return `${id},第${i + 1}号：张伟在北京大学读书。`;
    });
    writeFileSync(csv, ['id,text', ...rows].join('\n') + '\n');
    const unique = ROWS - DUPLICATES.size;

    const redis = new Redis(REDIS_URL);
    let queuedBefore: number;
    try {
      const first = startCli(['enqueue', csv, '--run', 'big'], env);
      while (!Number(await redis.hget(statsKey, 'documents'))) {
        assert.equal(first.child.exitCode, null, 'enqueue ended early');
        await delay(10);
      }
      first.child.kill('SIGKILL');
      await first.result;
      queuedBefore = Number(await redis.hget(statsKey, 'documents'));
      // Stands in for the minute after which the killed producer's lock
      // expires.
      await redis.del(`${prefix}:uie-batch:uie:run:big:lock:enqueue`);
    } finally {
      redis.disconnect();
    }
    assert.ok(queuedBefore < unique, `killed after ${queuedBefore} rows`);

    const again = await runCli(['enqueue', csv, '--run', 'big'], env);

    assert.equal(again.code, 0, again.stderr);
    const counts =
      /: (\d+) documents, .*; (\d+) already queued, 2 rows rejected\n$/.exec(
        again.stderr,
      );
    assert.ok(counts, again.stderr);
    const [queued, already] = [Number(counts[1]), Number(counts[2])];
    // Rows whose jobs the killed producer added without recording them
    // count as queued now.
    assert.ok(already >= queuedBefore, again.stderr);
    assert.equal(queued + already, unique);
    const rejects = readJsonl<Reject>(join(results, 'big', 'rejects.jsonl'));
    assert.deepEqual(rejects, [
      {
        file: csv,
        line: ROWS - 9,
        id: `d${ROWS - 20}`,
        reason: `duplicate id; first seen at line ${ROWS - 19}`,
      },
      {
        file: csv,
        line: ROWS - 4,
        id: 'd1',
        // Line 2 was read by this enqueue too, so this row is a repeat,
        // not that row moved.
        reason: `duplicate id; first seen at ${csv} line 2`,
      },
    ]);
  });
});
