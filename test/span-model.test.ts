import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { loadExtractorModel } from '../src/model/load-model.js';
import type { ModelFolder } from '../src/model/model-folder.js';
import { SharedTextModel } from '../src/model/shared-text-model.js';
import { SpanModel, type PackedBatch } from '../src/model/span-model.js';
import { ROOT, tempDir } from './helpers.js';

const ALIAS_MODEL = join(ROOT, 'test/fixtures/alias-model.onnx');

/** Returns the path of a graph written by test/fixtures/make_graphs.py. */
function graph(name: string): string {
  return join(ROOT, 'test/fixtures/graphs', `${name}.onnx`);
}

/**
 * A batch on which the graphs of make_graphs.py give start = token types
 * and end = mask, one row of four tokens.
 */
const BATCH: PackedBatch = {
  rows: 1,
  seqLen: 4,
  inputIds: new BigInt64Array(4),
  tokenTypeIds: BigInt64Array.from([0n, 0n, 1n, 1n]),
  attentionMask: BigInt64Array.from([1n, 1n, 1n, 0n]),
};

/** Loads a graph, runs BATCH and returns its start and end values. */
async function runBatch(path: string): Promise<number[][]> {
  const model = await SpanModel.load(path);
  try {
    const probs = await model.run(BATCH);
    return [[...probs.start], [...probs.end]];
  } finally {
    await model.release();
  }
}

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

describe('when an output is not float32', () => {
  it('rejects float16 outputs', async () => {
    const path = graph('float16-outputs');
    await assert.rejects(SpanModel.load(path), {
      name: 'ModelError',
      message:
        `ONNX model ${path}: output start_prob has type float16; the ` +
        'engine reads float32 or float64 probabilities, so export the ' +
        'model with float32 outputs',
    });
  });

  it('reads float64 outputs', async () => {
    assert.deepEqual(await runBatch(graph('float64-outputs')), [
      [0, 0, 1, 1],
      [1, 1, 1, 0],
    ]);
  });
});

describe('when the outputs are not start_prob and end_prob', () => {
  it('rejects start_prob without end_prob', async () => {
    const path = graph('one-uie-output');
    await assert.rejects(SpanModel.load(path), {
      name: 'ModelError',
      message:
        `ONNX model ${path} has output start_prob but no end_prob; its ` +
        'outputs are start_prob, logits_1; name the two outputs ' +
        'start_prob and end_prob',
    });
  });

  it('matches p_end, p_start by name', async () => {
    assert.deepEqual(await runBatch(graph('reversed-outputs')), [
      [0, 0, 1, 1],
      [1, 1, 1, 0],
    ]);
  });

  it('reads out_0, out_1 by position', async () => {
    assert.deepEqual(await runBatch(graph('unnamed-outputs')), [
      [0, 0, 1, 1],
      [1, 1, 1, 0],
    ]);
  });
});

describe('when an input is not one the engine feeds', () => {
  it('rejects an extra required input', async () => {
    const path = graph('extra-input');
    await assert.rejects(SpanModel.load(path), {
      name: 'ModelError',
      message:
        `ONNX model ${path} requires input extra_input, which the engine ` +
        'does not feed; it feeds input_ids, token_type_ids or ' +
        'segment_ids, position_ids or pos_ids, attention_mask or ' +
        'att_mask, and lexicon_bits',
    });
  });

  it('rejects int32 inputs', async () => {
    const path = graph('int32-inputs');
    await assert.rejects(SpanModel.load(path), {
      name: 'ModelError',
      message:
        `ONNX model ${path}: input input_ids has type int32; the engine ` +
        'feeds int64 tensors, so export the model with int64 inputs',
    });
  });

  for (const [name, shape] of [
    ['fixed-inputs', '[1, 128]'],
    ['rank3-inputs', '[batch, seq, 1]'],
  ]) {
    it(`rejects inputs of shape ${shape}`, async () => {
      const path = graph(name);
      await assert.rejects(SpanModel.load(path), {
        name: 'ModelError',
        message:
          `ONNX model ${path}: input input_ids has shape ${shape}; the ` +
          'engine feeds [batch, seq] with a varying number of rows and ' +
          'tokens, so export the model with both axes dynamic',
      });
    });
  }
});

describe('when an output has other dims', () => {
  it('reads [batch, seq, 1] outputs', async () => {
    assert.deepEqual(await runBatch(graph('column-outputs')), [
      [0, 0, 1, 1],
      [1, 1, 1, 0],
    ]);
  });

  it('rejects a [batch] output', async () => {
    const path = graph('row-outputs');
    await assert.rejects(SpanModel.load(path), {
      name: 'ModelError',
      message:
        `ONNX model ${path}: output start_prob has shape [batch]; the ` +
        'engine reads [batch, seq] or [batch, seq, 1]',
    });
  });

  for (const [name, dims] of [
    ['transposed-outputs', '[5, 2]'],
    ['sliced-outputs', '[2, 4]'],
  ]) {
    it(`rejects ${name} at load`, async () => {
      const path = graph(name);
      await assert.rejects(SpanModel.load(path), {
        name: 'ModelError',
        message:
          `ONNX model ${path} returned output start_prob with dims ${dims} ` +
          'for input dims [2, 5]; the engine reads [2, 5] or [2, 5, 1], ' +
          'one probability per token',
      });
    });
  }

  it('checks output dims on every run', async () => {
    // The probe run at load has five tokens, so only a later run shows it.
    const path = graph('five-token-outputs');
    const model = await SpanModel.load(path);
    const batch: PackedBatch = {
      rows: 1,
      seqLen: 8,
      inputIds: new BigInt64Array(8),
      tokenTypeIds: new BigInt64Array(8),
      attentionMask: new BigInt64Array(8).fill(1n),
    };
    await assert.rejects(model.run(batch), {
      name: 'ModelError',
      message:
        `ONNX model ${path} returned output start_prob with dims [1, 5] ` +
        'for input dims [1, 8]; the engine reads [1, 8] or [1, 8, 1], ' +
        'one probability per token',
    });
    await model.release();
  });
});

describe('SharedTextModel', () => {
  it('rejects float16 outputs', async () => {
    const path = graph('shared-float16');
    await assert.rejects(SharedTextModel.load(path), {
      name: 'ModelError',
      message:
        `ONNX model ${path}: output start_prob has type float16; the ` +
        'engine reads float32 or float64 probabilities, so export the ' +
        'model with float32 outputs',
    });
  });

  it('rejects swapped text and label axes', async () => {
    const path = graph('shared-swapped-axes');
    await assert.rejects(SharedTextModel.load(path), {
      name: 'ModelError',
      message:
        `ONNX model ${path} returned output start_prob with dims ` +
        '[3, 2, 5] for text dims [2, 5] and prompt dims [3, 4]; the ' +
        'engine reads [2, 3, 5], one probability per token',
    });
  });

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
