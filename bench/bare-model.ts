import { performance } from 'node:perf_hooks';

import { loadSettings } from '../src/config/config.js';
import { SpanExtractor } from '../src/engine/span-extractor.js';
import {
  loadExtractorModel,
  type ExtractorModel,
} from '../src/model/load-model.js';
import {
  readModelFolder,
  type ModelManifest,
} from '../src/model/model-folder.js';
import type { SharedTextBatch } from '../src/model/shared-text-model.js';
import type {
  PackedBatch,
  SpanProbabilities,
} from '../src/model/span-model.js';
import type { RulePlugin } from '../src/rules/plugin.js';
import { loadPlugins } from '../src/rules/registry.js';
import { loadLexicon } from '../src/tokenizer/lexicon.js';
import { countCodePoints, Tokenizer } from '../src/tokenizer/tokenizer.js';

/** Timings of one pass of SpanExtractor.extract over the corpus. */
export interface BarePass {
  /** Sum of SpanModel.run times, in milliseconds. */
  runMs: number;
  /** Whole extract() time including packing and decoding, in milliseconds. */
  extractMs: number;
  /** ONNX runs. */
  batches: number;
  /** Packed (label, text) rows, or text rows of the shared-text graph. */
  rows: number;
  /**
   * Sum of rows × padded length over all runs: token positions the encoder
   * computes.
   */
  positions: number;
}

/** Graph of the folder that a bare model runs. */
export type BareGraph = 'packed' | 'shared';

/** A model loaded in this process, one intra-op thread, ready for timed passes. */
export interface BareModel {
  graph: BareGraph;
  manifest: ModelManifest;
  plugins: RulePlugin[];
  extractor: SpanExtractor;
  /** Current totals of the wrapped run(); a pass reads the difference. */
  counters: Omit<BarePass, 'extractMs'>;
  /** Packed batches of the next pass are appended here while set. */
  recording?: PackedBatch[];
  /** Whether the folder has a shared-text graph. */
  hasSharedText: boolean;
  release(): Promise<void>;
}

/**
 * Loads one graph of a model folder and wraps it in a Proxy whose run() adds
 * its own duration to the counters, so the extractor's packing and decoding
 * stay outside the model time.
 *
 * @param graph `packed` for the UIE graph, `shared` for the shared-text
 *   graph, which the folder must have
 */
export async function loadBareModel(
  dir: string,
  graph: BareGraph = 'packed',
): Promise<BareModel> {
  const settings = loadSettings({ modelDir: dir });
  const folder = readModelFolder(dir);
  const model = await loadExtractorModel(folder, { intraOpThreads: 1, graph });
  const counters = { runMs: 0, batches: 0, rows: 0, positions: 0 };
  const plugins = await loadPlugins(settings.plugins);
  const bare: Partial<BareModel> = {
    graph,
    manifest: folder.manifest,
    plugins,
    counters,
    hasSharedText: folder.sharedTextPath !== undefined,
  };

  const timedRun = async (
    batch: PackedBatch | SharedTextBatch,
  ): Promise<SpanProbabilities> => {
    const started = performance.now();
    const probs = await runBatch(model, batch);
    counters.runMs += performance.now() - started;
    counters.batches++;
    if (isPacked(batch)) {
      counters.rows += batch.rows;
      counters.positions += batch.rows * batch.seqLen;
      bare.recording?.push(batch);
    } else {
      counters.rows += batch.texts;
      counters.positions += batch.texts * batch.seqLen;
    }
    return probs;
  };
  const timed = new Proxy(model, {
    get: (target, key, receiver) =>
      key === 'run' ? timedRun : Reflect.get(target, key, receiver),
  });

  bare.extractor = new SpanExtractor(
    timed,
    Tokenizer.fromFile(folder.vocabPath),
    folder.manifest,
    plugins,
    {
      threshold: settings.threshold,
      batchTokens: settings.batchTokens,
      lexicon: loadLexicon(folder),
    },
  );
  bare.release = () => model.release();
  return bare as BareModel;
}

function isPacked(batch: PackedBatch | SharedTextBatch): batch is PackedBatch {
  return 'rows' in batch;
}

/** Runs a batch on the graph it was packed for. */
function runBatch(
  model: ExtractorModel,
  batch: PackedBatch | SharedTextBatch,
): Promise<SpanProbabilities> {
  if (model.graph === 'packed' && isPacked(batch)) return model.run(batch);
  if (model.graph === 'shared' && !isPacked(batch)) return model.run(batch);
  throw new TypeError(`a ${model.graph} graph got a batch of the other graph`);
}

/**
 * Runs extract() over the sentences in groups of groupSize texts, the task
 * size the extract command sends to a pool thread.
 */
export async function timeBarePass(
  bare: BareModel,
  sentences: string[],
  schema: string[],
  groupSize: number,
): Promise<BarePass> {
  const before = { ...bare.counters };
  const started = performance.now();
  for (let i = 0; i < sentences.length; i += groupSize) {
    await bare.extractor.extract(sentences.slice(i, i + groupSize), schema);
  }
  const extractMs = performance.now() - started;
  const after = bare.counters;
  return {
    runMs: after.runMs - before.runMs,
    extractMs,
    batches: after.batches - before.batches,
    rows: after.rows - before.rows,
    positions: after.positions - before.positions,
  };
}

/** Runs one untimed group, so first-run allocations stay out of the timings. */
export async function warmUp(
  bare: BareModel,
  sentences: string[],
  schema: string[],
  groupSize: number,
): Promise<void> {
  await bare.extractor.extract(sentences.slice(0, groupSize), schema);
}

/**
 * Counts text tokens over all packed rows: the extractor packs every
 * non-empty text once per label it sends to the model, which is every label
 * except those only a rule plugin covers.
 */
export function textTokensOverRows(
  bare: BareModel,
  sentences: string[],
  schema: string[],
): number {
  const modelLabels = schema.filter(
    (l) =>
      bare.manifest.labels.includes(l) ||
      !bare.plugins.some((p) => p.labels.includes(l)),
  ).length;
  const chars = sentences.reduce((sum, s) => sum + countCodePoints(s), 0);
  return chars * modelLabels;
}
