/**
 * Piscina task module: each pool thread loads the model and tokenizer once,
 * as soon as it starts, and keeps them for its lifetime.
 */
import { workerData } from 'node:worker_threads';

import type { ChunkContext } from '../chunking/plan.js';
import { isUserError } from '../errors/errors.js';
import { loadExtractorModel } from '../model/load-model.js';
import { readModelFolder } from '../model/model-folder.js';
import { loadPlugins } from '../rules/registry.js';
import { loadLexicon } from '../tokenizer/lexicon.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { requestLexicon } from './lexicon-channel.js';
import { SpanExtractor } from './span-extractor.js';
import type { TextOutcome } from './text-outcome.js';
import { STEP_MODEL, ThreadGate, type TaskTicket } from './thread-control.js';

/** Settings passed to every thread as piscina's workerData. */
export interface ThreadSettings {
  modelDir: string;
  threshold: number;
  batchTokens: number;
  plugins: string[];
  intraOpThreads: number;
  /** Heap limit of the thread in MiB; 0 keeps Node's default. */
  memoryMb: number;
  /**
   * BroadcastChannel on which the main thread posts the lexicon it built
   * (lexicon-channel.ts); without it the thread builds its own.
   */
  lexiconChannel?: string;
  /**
   * Memory in which the thread records its calls into ONNX Runtime, so the
   * pool never ends it inside one (thread-control.ts); set by the pool.
   */
  control?: SharedArrayBuffer;
}

/** One task: texts of one or more chunks and the labels to extract. */
export interface ExtractTask {
  texts: string[];
  schema: string[];
  /** Plugin context of each text, where it has one (windows). */
  contexts?: (ChunkContext | undefined)[];
}

/** A task as the pool sends it to a thread, with the slot it was given. */
export interface ThreadTask extends ExtractTask {
  ticket?: TaskTicket;
}

async function load(settings: ThreadSettings): Promise<SpanExtractor> {
  // The main thread verifies the hashes while this loads, and closes the
  // pool before any real task runs if they do not match.
  const folder = readModelFolder(settings.modelDir, false);
  // Requested before the graph loads, so the main thread's reply is
  // waiting by the time the graph is ready.
  const shared =
    folder.lexiconPath !== undefined && settings.lexiconChannel !== undefined
      ? requestLexicon(settings.lexiconChannel)
      : undefined;
  shared?.catch(() => undefined);
  // One graph per thread: the shared-text graph when the folder has one.
  const model = await gate.native(() =>
    loadExtractorModel(folder, { intraOpThreads: settings.intraOpThreads }),
  );
  // Only a graph with the lexicon input needs the trie.
  const lexicon = model.needsLexicon
    ? await (shared ?? Promise.resolve(loadLexicon(folder)))
    : undefined;
  return new SpanExtractor(
    model,
    Tokenizer.fromFile(folder.vocabPath),
    folder.manifest,
    await loadPlugins(settings.plugins),
    {
      threshold: settings.threshold,
      batchTokens: settings.batchTokens,
      lexicon,
    },
  );
}

const settings = workerData as ThreadSettings;
const gate = new ThreadGate(settings.control);
// Loading starts when piscina imports this module at thread start. An idle
// piscina thread then blocks in Atomics.wait, so the load advances only
// while a task waits for it: startEngine sends the warm-up tasks at once.
const extractor = load(settings).catch((err: unknown) => {
  // A structured clone to the main thread keeps an error's message but turns
  // ModelError and the other user errors into plain Error, which is logged
  // with a stack like a bug. RangeError survives the clone as a user error.
  if (isUserError(err) && !(err instanceof RangeError)) {
    throw new RangeError((err as Error).message);
  }
  throw err;
});
// The first task that awaits a failed load reports its error. Until then
// the rejection is marked handled, because an unhandled one ends the thread.
extractor.catch(() => undefined);

/**
 * Extracts entities from each text; offsets are relative to each text. A
 * rule plugin that fails on a text makes that text's outcome its error,
 * and every other failure rejects the whole task.
 *
 * @returns one outcome per text, in the order of `task.texts`
 */
export default async function extractTask(
  task: ThreadTask,
): Promise<TextOutcome[]> {
  try {
    gate.begin(task.ticket);
    const engine = await extractor;
    if (task.texts.length === 0) return [];
    gate.step(STEP_MODEL);
    return await engine.extract(task.texts, task.schema, gate, task.contexts);
  } finally {
    gate.end();
  }
}
