import * as ort from 'onnxruntime-node';

import { ModelError } from '../errors/errors.js';
import {
  checkOutputDims,
  checkProbabilityOutput,
  createSession,
  formatShape,
  runSession,
  type SessionOptions,
} from './session.js';
import { LEXICON_INPUT, type SpanProbabilities } from './span-model.js';

/**
 * One shared-text batch: every text row is decoded with every prompt row.
 * All arrays are row-major int64.
 */
export interface SharedTextBatch {
  /** Text rows in the batch. */
  texts: number;
  /** Padded length of a text row: the longest text plus its [SEP]. */
  seqLen: number;
  /** [texts, seqLen]: each text's ids followed by [SEP], then padding. */
  textIds: BigInt64Array;
  /** [texts, seqLen]: 1 over the ids and [SEP], 0 over padding. */
  textMask: BigInt64Array;
  /** Prompt rows, one per label. */
  labels: number;
  /** Padded length of a prompt row. */
  promptLen: number;
  /** [labels, promptLen]: `[CLS] prompt [SEP]`, then padding. */
  promptIds: BigInt64Array;
  /** [labels, promptLen]: 1 over `[CLS] prompt [SEP]`, 0 over padding. */
  promptMask: BigInt64Array;
  /**
   * [texts, seqLen]: dictionary-match bits of each text character, 0 on
   * [SEP] and padding; only for graphs with the `lexicon_bits` input.
   */
  lexiconBits?: BigInt64Array;
}

const INPUTS = ['text_ids', 'text_mask', 'prompt_ids', 'prompt_mask'];
const OUTPUTS = ['start_prob', 'end_prob'];
const OUTPUT_SHAPES = [['batch', 'labels', 'seq']];

// Sizes of the probe batch of SharedTextModel.load. They differ from each
// other, so that a graph that swaps two output axes gives other dims.
const PROBE_TEXTS = 2;
const PROBE_LEN = 5;
const PROBE_LABELS = 3;
const PROBE_PROMPT_LEN = 4;

/**
 * The shared-text graph that `training/export.py` writes beside the packed
 * UIE graph. It encodes each text once and decodes every label from the same
 * states, so a batch costs one encoder pass per text instead of one per
 * (label, text) pair. Probabilities come out as [texts, labels, seqLen] and
 * equal the packed graph's over the text part of each row, to float
 * rounding.
 */
export class SharedTextModel {
  /** Graph kind, which tells SpanExtractor to send shared-text batches. */
  readonly graph = 'shared' as const;

  /** Whether the graph takes dictionary-match bits beside the text ids. */
  readonly needsLexicon: boolean;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly path: string,
  ) {
    this.needsLexicon = session.inputNames.includes(LEXICON_INPUT);
  }

  /**
   * Loads a shared-text ONNX file, checks its input and output names and
   * its output types, and runs one small batch to check the output dims.
   *
   * @throws ModelError when the file cannot be loaded, its inputs or
   *   outputs are not the shared-text ones, or its outputs are not float32
   *   or float64 [texts, labels, seq].
   */
  static async load(
    path: string,
    options: SessionOptions = {},
  ): Promise<SharedTextModel> {
    const session = await createSession(path, options);
    const inputs = session.inputNames;
    const outputs = session.outputNames;
    const missingInputs = INPUTS.filter((n) => !inputs.includes(n));
    const missingOutputs = OUTPUTS.filter((n) => !outputs.includes(n));
    if (missingInputs.length > 0 || missingOutputs.length > 0) {
      await session.release();
      throw new ModelError(
        `ONNX model ${path} is not a shared-text graph: expected inputs ` +
          `${INPUTS.join(', ')} and outputs ${OUTPUTS.join(', ')}; ` +
          `it has inputs ${inputs.join(', ')} and outputs ${outputs.join(', ')}`,
      );
    }
    try {
      for (const output of OUTPUTS) {
        checkProbabilityOutput(session, path, output, OUTPUT_SHAPES);
      }
      const model = new SharedTextModel(session, path);
      await model.probe();
      return model;
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  /** Input names as the graph declares them, for error reports. */
  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /**
   * Runs one batch and returns probabilities [texts, labels, seqLen].
   *
   * @throws ModelError when an output has other dims
   */
  async run(batch: SharedTextBatch): Promise<SpanProbabilities> {
    const out = await runSession(this.session, this.path, this.feeds(batch));
    return this.read(out, batch);
  }

  /** Releases the ONNX Runtime session and its memory. */
  async release(): Promise<void> {
    await this.session.release();
  }

  private feeds(batch: SharedTextBatch): Record<string, ort.Tensor> {
    const textDims = [batch.texts, batch.seqLen];
    const promptDims = [batch.labels, batch.promptLen];
    const feeds: Record<string, ort.Tensor> = {
      text_ids: new ort.Tensor('int64', batch.textIds, textDims),
      text_mask: new ort.Tensor('int64', batch.textMask, textDims),
      prompt_ids: new ort.Tensor('int64', batch.promptIds, promptDims),
      prompt_mask: new ort.Tensor('int64', batch.promptMask, promptDims),
    };
    if (this.needsLexicon) {
      if (!batch.lexiconBits) {
        throw new ModelError(
          `the model's graph takes ${LEXICON_INPUT}, but the batch has no lexicon bits`,
        );
      }
      feeds[LEXICON_INPUT] = new ort.Tensor(
        'int64',
        batch.lexiconBits,
        textDims,
      );
    }
    return feeds;
  }

  private read(
    out: ort.InferenceSession.OnnxValueMapType,
    batch: SharedTextBatch,
  ): SpanProbabilities {
    const dims = [batch.texts, batch.labels, batch.seqLen];
    const inputs = () =>
      `text dims ${formatShape([batch.texts, batch.seqLen])} and ` +
      `prompt dims ${formatShape([batch.labels, batch.promptLen])}`;
    for (const name of OUTPUTS) {
      checkOutputDims(this.path, name, out[name].dims, [dims], inputs);
    }
    return {
      start: out.start_prob.data as Float32Array,
      end: out.end_prob.data as Float32Array,
    };
  }

  /**
   * Runs one tiny batch, so that a graph whose outputs are transposed or
   * sliced is rejected at load rather than on every document.
   */
  private async probe(): Promise<void> {
    const textSize = PROBE_TEXTS * PROBE_LEN;
    const promptSize = PROBE_LABELS * PROBE_PROMPT_LEN;
    // Id 0 exists in every vocabulary and lexicon bit 0 means no match.
    const batch: SharedTextBatch = {
      texts: PROBE_TEXTS,
      seqLen: PROBE_LEN,
      textIds: new BigInt64Array(textSize),
      textMask: new BigInt64Array(textSize).fill(1n),
      labels: PROBE_LABELS,
      promptLen: PROBE_PROMPT_LEN,
      promptIds: new BigInt64Array(promptSize),
      promptMask: new BigInt64Array(promptSize).fill(1n),
      ...(this.needsLexicon
        ? { lexiconBits: new BigInt64Array(textSize) }
        : {}),
    };
    const out = await runSession(this.session, this.path, this.feeds(batch));
    this.read(out, batch);
  }
}
