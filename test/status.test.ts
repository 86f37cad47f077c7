import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { Redis } from 'ioredis';

import {
  deletePrefix,
  keysUnder,
  REDIS_URL,
  runCli,
  uniquePrefix,
} from './helpers.js';

describe('when status reads a run', () => {
  const redis = new Redis(REDIS_URL);
  const prefixes: string[] = [];

  /** Returns a prefix of its own for each test, deleted after the suite. */
  const newPrefix = () => {
    prefixes.push(uniquePrefix(`status-${prefixes.length}`));
    return prefixes[prefixes.length - 1];
  };

  after(async () => {
    redis.disconnect();
    for (const prefix of prefixes) await deletePrefix(prefix);
  });

  it('rejects a run that does not exist', async () => {
    const prefix = newPrefix();
    const before = await keysUnder(redis, prefix);

    const result = await runCli(['status', '--run', 'missing-1'], {
      UIE_PREFIX: prefix,
    });

    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /run missing-1 not found in queue /);
    assert.deepEqual(await keysUnder(redis, prefix), before);
  });

  it('forget creates no key for a missing run', async () => {
    const prefix = newPrefix();
    const before = await keysUnder(redis, prefix);

    const result = await runCli(['forget', '--run', 'missing-2'], {
      UIE_PREFIX: prefix,
    });

    assert.equal(result.code, 1);
    assert.match(result.stderr, /run missing-2 not found in queue /);
    assert.deepEqual(await keysUnder(redis, prefix), before);
  });

  it('creates no key when listing every run', async () => {
    const prefix = newPrefix();
    const before = await keysUnder(redis, prefix);

    const result = await runCli(['status', '--json'], { UIE_PREFIX: prefix });

    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout).runs, []);
    assert.deepEqual(await keysUnder(redis, prefix), before);
  });
});
