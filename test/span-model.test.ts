import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { SpanModel } from '../src/model/span-model.js';
import { ROOT, tempDir } from './helpers.js';

const ALIAS_MODEL = join(ROOT, 'test/fixtures/alias-model.onnx');

describe('SpanModel with UIE input names', () => {
  it('feeds pos_ids and att_mask', async () => {
    const model = await SpanModel.load(ALIAS_MODEL);
    const probs = await model.run({
      rows: 1,
      seqLen: 4,
      inputIds: BigInt64Array.from([1n, 5n, 2n, 0n]),
      tokenTypeIds: BigInt64Array.from([0n, 0n, 1n, 1n]),
      attentionMask: BigInt64Array.from([1n, 1n, 1n, 0n]),
    });
    // start_prob = token_type_ids * att_mask, end_prob = pos_ids / 1000.
    assert.deepEqual([...probs.start], [0, 0, 1, 0]);
    assert.deepEqual(
      [...probs.end].map((x) => Math.round(x * 1000)),
      [0, 1, 2, 3],
    );
    await model.release();
  });

  it('rejects a file that is not ONNX', async () => {
    const path = join(tempDir('span-model'), 'broken.onnx');
    writeFileSync(path, 'not a model');
    await assert.rejects(SpanModel.load(path), (err: Error) => {
      assert.equal(err.name, 'ModelError');
      assert.match(err.message, new RegExp(`cannot load ONNX model ${path}`));
      return true;
    });
  });
});
