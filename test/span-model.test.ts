import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { loadExtractorModel } from '../src/model/load-model.js';
import type { ModelFolder } from '../src/model/model-folder.js';
import { SharedTextModel } from '../src/model/shared-text-model.js';
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

describe('SharedTextModel', () => {
  it('rejects a packed graph', async () => {
    await assert.rejects(SharedTextModel.load(ALIAS_MODEL), {
      name: 'ModelError',
      message:
        `ONNX model ${ALIAS_MODEL} is not a shared-text graph: expected ` +
        'inputs text_ids, text_mask, prompt_ids, prompt_mask and outputs ' +
        'start_prob, end_prob; it has inputs input_ids, token_type_ids, ' +
        'pos_ids, att_mask and outputs start_prob, end_prob, ids_copy',
    });
  });
});

describe('loadExtractorModel', () => {
  // These tests read no manifest and no vocabulary, so only the paths matter.
  const folder: ModelFolder = {
    dir: join(ROOT, 'test/fixtures'),
    manifest: {
      name: 'alias',
      version: '0.0.1',
      onnx: 'alias-model.onnx',
      vocab: 'vocab.txt',
      labels: [],
      max_seq_len: 64,
      sha256: {},
    },
    onnxPath: ALIAS_MODEL,
    vocabPath: join(ROOT, 'test/fixtures/vocab.txt'),
  };

  it('loads the packed graph without shared_text', async () => {
    const model = await loadExtractorModel(folder);
    assert.equal(model.graph, 'packed');
    assert.ok(model instanceof SpanModel);
    await model.release();
  });

  it('rejects shared without shared_text', async () => {
    await assert.rejects(loadExtractorModel(folder, { graph: 'shared' }), {
      name: 'ModelError',
      message:
        `model folder ${folder.dir} has no shared-text graph: model.json has ` +
        'no "shared_text" field; re-export it with training/export.py ' +
        '--shared-text',
    });
  });

  it('loads packed when asked, beside a shared graph', async () => {
    const withShared = { ...folder, sharedTextPath: ALIAS_MODEL };
    const model = await loadExtractorModel(withShared, { graph: 'packed' });
    assert.equal(model.graph, 'packed');
    await model.release();
  });

  it('tries the shared graph first', async () => {
    // The alias model is a packed graph, so loading it as shared must fail.
    const withShared = { ...folder, sharedTextPath: ALIAS_MODEL };
    await assert.rejects(loadExtractorModel(withShared), {
      name: 'ModelError',
      message: /is not a shared-text graph/,
    });
  });
});
