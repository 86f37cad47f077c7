import * as ort from 'onnxruntime-node';

import { ModelError } from '../errors/errors.js';
import {
  checkOutputDims,
  checkProbabilityOutput,
  createSession,
  formatShape,
  isFixedSize,
  runSession,
  type SessionOptions,
} from './session.js';

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
/** The inputs SpanModel can feed, in words, for error messages. */
const FED_INPUTS =
  'input_ids, token_type_ids or segment_ids, position_ids or pos_ids, ' +
  `attention_mask or att_mask, and ${LEXICON_INPUT}`;

/** Rows and tokens of the batch that SpanModel.load runs once as a probe. */
const PROBE_ROWS = 2;
const PROBE_LEN = 5;

/** Output shapes SpanModel reads. Some exports keep a last axis of size 1. */
const OUTPUT_SHAPES = [
  ['batch', 'seq'],
  ['batch', 'seq', 1],
];

/** The graph's name for each input SpanModel feeds and each output it reads. */
interface GraphNames {
  ids: string;
  types?: string;
  positions?: string;
  mask?: string;
  lexicon?: string;
  start: string;
  end: string;
}

/**
 * A span-pointer model with the UIE contract: int64 `[batch, seq]` inputs,
 * float32 `start_prob` and `end_prob` outputs.
 */
export class SpanModel {
  /** Graph kind, which tells SpanExtractor to send packed batches. */
  readonly graph = 'packed' as const;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly path: string,
    private readonly names: GraphNames,
  ) {}

  /** Whether the graph takes dictionary-match bits beside the UIE inputs. */
  get needsLexicon(): boolean {
    return this.names.lexicon !== undefined;
  }

  /**
   * Loads an ONNX file, maps its input and output names onto the UIE
   * contract, checks their types and shapes, and runs one small batch to
   * check the dims of the outputs.
   *
   * @throws ModelError naming the file and the input or output that the
   *   engine cannot feed or read
   */
  static async load(
    path: string,
    options: SessionOptions = {},
  ): Promise<SpanModel> {
    const session = await createSession(path, options);
    try {
      const names = mapNames(session, path);
      checkInputs(session, path, names);
      for (const output of [names.start, names.end]) {
        checkProbabilityOutput(session, path, output, OUTPUT_SHAPES);
      }
      const model = new SpanModel(session, path, names);
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
   * Runs one packed batch and returns its start and end probabilities.
   *
   * @throws ModelError when an output does not have one value per token
   */
  async run(batch: PackedBatch): Promise<SpanProbabilities> {
    const out = await runSession(this.session, this.path, this.feeds(batch));
    return this.read(out, batch);
  }

  /** Releases the ONNX Runtime session and its memory. */
  async release(): Promise<void> {
    await this.session.release();
  }

  private feeds(batch: PackedBatch): Record<string, ort.Tensor> {
    const dims = [batch.rows, batch.seqLen];
    const tensor = (data: BigInt64Array) => new ort.Tensor('int64', data, dims);
    const feeds: Record<string, ort.Tensor> = {
      [this.names.ids]: tensor(batch.inputIds),
    };
    if (this.names.types) feeds[this.names.types] = tensor(batch.tokenTypeIds);
    if (this.names.mask) feeds[this.names.mask] = tensor(batch.attentionMask);
    if (this.names.positions) {
      feeds[this.names.positions] = tensor(positionIds(batch));
    }
    if (this.names.lexicon) {
      if (!batch.lexiconBits) {
        throw new ModelError(
          `the model's graph takes ${LEXICON_INPUT}, but the batch has no lexicon bits`,
        );
      }
      feeds[this.names.lexicon] = tensor(batch.lexiconBits);
    }
    return feeds;
  }

  private read(
    out: ort.InferenceSession.OnnxValueMapType,
    batch: PackedBatch,
  ): SpanProbabilities {
    const { rows, seqLen } = batch;
    const accepted = [
      [rows, seqLen],
      [rows, seqLen, 1],
    ];
    const inputs = () => `input dims ${formatShape([rows, seqLen])}`;
    for (const name of [this.names.start, this.names.end]) {
      checkOutputDims(this.path, name, out[name].dims, accepted, inputs);
    }
    // NOTE: a float64 output gives a Float64Array, which decoding indexes
    // the same way.
    return {
      start: out[this.names.start].data as Float32Array,
      end: out[this.names.end].data as Float32Array,
    };
  }

  /**
   * Runs one tiny batch, so that a graph whose outputs are transposed or
   * sliced is rejected at load rather than on every document.
   */
  private async probe(): Promise<void> {
    const size = PROBE_ROWS * PROBE_LEN;
    // Each row: two prompt tokens, then three text tokens.
    const types = Array.from({ length: size }, (_, i) =>
      i % PROBE_LEN < 2 ? 0n : 1n,
    );
    // Id 0 exists in every vocabulary and lexicon bit 0 means no match.
    const batch: PackedBatch = {
      rows: PROBE_ROWS,
      seqLen: PROBE_LEN,
      inputIds: new BigInt64Array(size),
      tokenTypeIds: BigInt64Array.from(types),
      attentionMask: new BigInt64Array(size).fill(1n),
      ...(this.needsLexicon ? { lexiconBits: new BigInt64Array(size) } : {}),
    };
    const out = await runSession(this.session, this.path, this.feeds(batch));
    this.read(out, batch);
  }
}

/**
 * Finds the graph's names for the UIE inputs and outputs.
 *
 * @throws ModelError when the graph lacks `input_ids`, has only one of
 *   `start_prob` and `end_prob`, or has fewer than two outputs
 */
function mapNames(session: ort.InferenceSession, path: string): GraphNames {
  const inputs = session.inputNames;
  const pick = (options: string[]) => options.find((n) => inputs.includes(n));
  const ids = pick(INPUT_IDS);
  if (!ids) {
    throw new ModelError(
      `ONNX model ${path} has no input named input_ids; its inputs are ${inputs.join(', ')}`,
    );
  }
  return {
    ids,
    types: pick(TOKEN_TYPES),
    positions: pick(POSITIONS),
    mask: pick(MASKS),
    lexicon: pick([LEXICON_INPUT]),
    ...mapOutputs(session.outputNames, path),
  };
}

/**
 * Picks the start and end outputs: by their UIE names, else by names that
 * contain "start" and "end", else the first two, as PaddleNLP's own ONNX
 * inference reads them.
 */
function mapOutputs(
  outputs: readonly string[],
  path: string,
): { start: string; end: string } {
  const hasStart = outputs.includes('start_prob');
  const hasEnd = outputs.includes('end_prob');
  if (hasStart && hasEnd) return { start: 'start_prob', end: 'end_prob' };
  // With one UIE name, the position of the other output is a guess.
  if (hasStart || hasEnd) {
    const [has, lacks] = hasStart
      ? ['start_prob', 'end_prob']
      : ['end_prob', 'start_prob'];
    throw new ModelError(
      `ONNX model ${path} has output ${has} but no ${lacks}; its outputs are ${outputs.join(', ')}; name the two outputs start_prob and end_prob`,
    );
  }
  const contains = (name: string, part: string) =>
    name.toLowerCase().includes(part);
  const starts = outputs.filter(
    (n) => contains(n, 'start') && !contains(n, 'end'),
  );
  const ends = outputs.filter(
    (n) => contains(n, 'end') && !contains(n, 'start'),
  );
  if (starts.length === 1 && ends.length === 1) {
    return { start: starts[0], end: ends[0] };
  }
  if (outputs.length < 2) {
    throw new ModelError(
      `ONNX model ${path} must have outputs start_prob and end_prob; it has ${outputs.join(', ')}`,
    );
  }
  return { start: outputs[0], end: outputs[1] };
}

/**
 * Checks that the engine feeds every input of the graph, as an int64 tensor
 * with a varying number of rows and tokens.
 *
 * @throws ModelError naming the file and the input
 */
function checkInputs(
  session: ort.InferenceSession,
  path: string,
  names: GraphNames,
): void {
  const { ids, types, positions, mask, lexicon } = names;
  const fed = [ids, types, positions, mask, lexicon];
  for (const meta of session.inputMetadata) {
    if (!fed.includes(meta.name)) {
      throw new ModelError(
        `ONNX model ${path} requires input ${meta.name}, which the engine does not feed; it feeds ${FED_INPUTS}`,
      );
    }
    if (!meta.isTensor || meta.type !== 'int64') {
      const type = meta.isTensor ? `type ${meta.type}` : 'no tensor type';
      throw new ModelError(
        `ONNX model ${path}: input ${meta.name} has ${type}; the engine feeds int64 tensors, so export the model with int64 inputs`,
      );
    }
    // An empty shape means that ONNX Runtime does not know it.
    const { shape } = meta;
    if (shape.length > 0 && (shape.length !== 2 || shape.some(isFixedSize))) {
      throw new ModelError(
        `ONNX model ${path}: input ${meta.name} has shape ${formatShape(shape)}; the engine feeds [batch, seq] with a varying number of rows and tokens, so export the model with both axes dynamic`,
      );
    }
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
