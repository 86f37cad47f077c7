import * as ort from 'onnxruntime-node';

import { ModelError } from '../errors/errors.js';
import { createSession, runSession, type SessionOptions } from './session.js';

/** One packed batch: row-major [rows, seqLen] int64 inputs. */
export interface PackedBatch {
  rows: number;
  seqLen: number;
  inputIds: BigInt64Array;
  tokenTypeIds: BigInt64Array;
  attentionMask: BigInt64Array;
  /**
   * Dictionary-match bits of each text position, 0 elsewhere; only for
   * models whose graph has the `lexicon_bits` input.
   */
  lexiconBits?: BigInt64Array;
}

/**
 * Start and end probabilities, row-major: [rows, seqLen] from the packed
 * graph, [texts, labels, seqLen] from the shared-text graph.
 */
export interface SpanProbabilities {
  start: Float32Array;
  end: Float32Array;
}

// Names PaddleNLP UIE exports and Hugging Face exports use for the same inputs.
const INPUT_IDS = ['input_ids'];
const TOKEN_TYPES = ['token_type_ids', 'segment_ids'];
const POSITIONS = ['position_ids', 'pos_ids'];
const MASKS = ['attention_mask', 'att_mask'];
/** Optional input of models trained with a lexicon (`training/lexicon.py`). */
export const LEXICON_INPUT = 'lexicon_bits';

/**
 * A span-pointer model with the UIE contract: int64 `[batch, seq]` inputs,
 * float32 `start_prob` and `end_prob` outputs.
 */
export class SpanModel {
  /** Graph kind, which tells SpanExtractor to send packed batches. */
  readonly graph = 'packed' as const;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly names: {
      ids: string;
      types?: string;
      positions?: string;
      mask?: string;
      lexicon?: string;
      start: string;
      end: string;
    },
  ) {}

  /** Whether the graph takes dictionary-match bits beside the UIE inputs. */
  get needsLexicon(): boolean {
    return this.names.lexicon !== undefined;
  }

  /**
   * Loads an ONNX file and maps its input names onto the UIE contract.
   *
   * @throws ModelError when the graph lacks `input_ids` or two outputs.
   */
  static async load(
    path: string,
    options: SessionOptions = {},
  ): Promise<SpanModel> {
    const session = await createSession(path, options);
    const inputs = session.inputNames;
    const pick = (options: string[]) => options.find((n) => inputs.includes(n));
    const ids = pick(INPUT_IDS);
    if (!ids) {
      throw new ModelError(
        `ONNX model ${path} has no input named input_ids; its inputs are ${inputs.join(', ')}`,
      );
    }
    const outputs = session.outputNames;
    const start = outputs.includes('start_prob') ? 'start_prob' : outputs[0];
    const end = outputs.includes('end_prob') ? 'end_prob' : outputs[1];
    if (!start || !end) {
      throw new ModelError(
        `ONNX model ${path} must have outputs start_prob and end_prob; it has ${outputs.join(', ')}`,
      );
    }
    return new SpanModel(session, {
      ids,
      types: pick(TOKEN_TYPES),
      positions: pick(POSITIONS),
      mask: pick(MASKS),
      lexicon: pick([LEXICON_INPUT]),
      start,
      end,
    });
  }

  /** Input names as the graph declares them, for error reports. */
  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Runs one packed batch and returns its start and end probabilities. */
  async run(batch: PackedBatch): Promise<SpanProbabilities> {
    const dims = [batch.rows, batch.seqLen];
    const feeds: Record<string, ort.Tensor> = {
      [this.names.ids]: new ort.Tensor('int64', batch.inputIds, dims),
    };
    if (this.names.types) {
      feeds[this.names.types] = new ort.Tensor(
        'int64',
        batch.tokenTypeIds,
        dims,
      );
    }
    if (this.names.mask) {
      feeds[this.names.mask] = new ort.Tensor(
        'int64',
        batch.attentionMask,
        dims,
      );
    }
    if (this.names.positions) {
      feeds[this.names.positions] = new ort.Tensor(
        'int64',
        positionIds(batch),
        dims,
      );
    }
    if (this.names.lexicon) {
      if (!batch.lexiconBits) {
        throw new ModelError(
          `the model's graph takes ${LEXICON_INPUT}, but the batch has no lexicon bits`,
        );
      }
      feeds[this.names.lexicon] = new ort.Tensor(
        'int64',
        batch.lexiconBits,
        dims,
      );
    }
    const out = await runSession(this.session, feeds);
    return {
      start: out[this.names.start].data as Float32Array,
      end: out[this.names.end].data as Float32Array,
    };
  }

  /** Releases the ONNX Runtime session and its memory. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

function positionIds(batch: PackedBatch): BigInt64Array {
  const out = new BigInt64Array(batch.rows * batch.seqLen);
  for (let r = 0; r < batch.rows; r++) {
    for (let t = 0; t < batch.seqLen; t++)
      out[r * batch.seqLen + t] = BigInt(t);
  }
  return out;
}
