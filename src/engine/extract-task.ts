/**
 * Piscina task module: each pool thread loads the model and tokenizer once,
 * as soon as it starts, and keeps them for its lifetime.
 */
import { workerData } from 'node:worker_threads';

import { loadExtractorModel } from '../model/load-model.js';
import { readModelFolder } from '../model/model-folder.js';
import { loadPlugins } from '../rules/registry.js';
import { loadLexicon } from '../tokenizer/lexicon.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Entity } from './entity.js';
import { requestLexicon } from './lexicon-channel.js';
import { SpanExtractor } from './span-extractor.js';

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
}

/** One task: texts of one or more chunks and the labels to extract. */
export interface ExtractTask {
  texts: string[];
  schema: string[];
}

async function load(settings: ThreadSettings): Promise<SpanExtractor> {
  // The main thread verifies the hashes while this loads, and closes the
  // pool before any real task runs if they do not match.
  const folder = readModelFolder(settings.modelDir, false);
  // Asked for before the graph loads, so the main thread's answer is
  // waiting by the time the graph is ready.
  const shared =
    folder.lexiconPath !== undefined && settings.lexiconChannel !== undefined
      ? requestLexicon(settings.lexiconChannel)
      : undefined;
  shared?.catch(() => undefined);
  // One graph per thread: the shared-text graph when the folder has one.
  const model = await loadExtractorModel(folder, {
    intraOpThreads: settings.intraOpThreads,
  });
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

// Loading starts when piscina imports this module at thread start, so it
// overlaps the main thread's own start-up instead of waiting for a task.
const extractor = load(workerData as ThreadSettings);
// The first task that awaits a failed load reports its error. Until then
// the rejection is marked handled, because an unhandled one ends the thread.
extractor.catch(() => undefined);

/** Extracts entities from each text; offsets are relative to each text. */
export default async function extractTask(
  task: ExtractTask,
): Promise<Entity[][]> {
  const engine = await extractor;
  if (task.texts.length === 0) return [];
  return engine.extract(task.texts, task.schema);
}
