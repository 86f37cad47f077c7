import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  ConfigError,
  InputError,
  isUserError,
  ModelError,
  RedisUnavailableError,
  RunNotFinishedError,
  UsageError,
} from '../src/errors/errors.js';

describe('isUserError', () => {
  it('accepts the errors of user mistakes', () => {
    for (const err of [
      new ConfigError('threads: expected an integer, got "x"'),
      new InputError('in.csv: the file is empty'),
      new ModelError('model.json not found'),
      new RedisUnavailableError('Redis did not answer'),
      new RunNotFinishedError('run r1 is not finished'),
      new UsageError('unknown command "x"'),
      new RangeError('run: expected 1 to 100 letters'),
    ]) {
      assert.equal(isUserError(err), true, err.name);
    }
  });

  it('rejects errors of bugs', () => {
    let engineError: unknown;
    try {
      (undefined as unknown as { x: number }).x;
    } catch (err) {
      engineError = err;
    }
    assert.ok(engineError instanceof TypeError);
    assert.equal(isUserError(engineError), false);
    assert.equal(isUserError(new Error('unexpected state')), false);
    assert.equal(isUserError('a thrown string'), false);
  });

  it('ignores a foreign error named like a user error', () => {
    const err = new Error('from a library');
    err.name = 'InputError';
    assert.equal(isUserError(err), false);
  });
});
