import type { Logger } from 'pino';

import { chunkLengthFor } from '../chunking/plan.js';
import { modelPath, resolveThreads, type Settings } from '../config/config.js';
import type { ThreadSettings } from '../engine/extract-task.js';
import { ExtractionPool } from '../engine/pool.js';
import {
  readModelFolder,
  type ModelFolder,
  type ModelManifest,
} from '../model/model-folder.js';
import type { RulePlugin } from '../rules/plugin.js';
import { loadPlugins, resolvePluginEntries } from '../rules/registry.js';

/** A started extraction engine: a verified model and a warm thread pool. */
export interface Engine {
  pool: ExtractionPool;
  manifest: ModelManifest;
  /** Maximum chunk length in characters for the configured schema. */
  chunkLength: number;
  settings: Settings;
  /**
   * Returns the labels of a schema that neither the model was trained on
   * nor a plugin adds; the model's output for them means little.
   */
  untrained(schema: string[]): string[];
}

/** A pool whose threads have begun loading the model, not yet verified. */
interface StartedPool {
  pool: ExtractionPool;
  warming: Promise<void>;
  /** The pool's settings, so that only an engine with the same takes it. */
  key: string;
}

let prestarted: StartedPool | undefined;

/**
 * Starts the pool threads as early as possible in a command that will call
 * {@link startEngine} with the same settings, so that Node.js starting each
 * thread and loading the model overlap the command's own module loading
 * and input checks. Settings that startEngine would reject start nothing
 * here; startEngine then reports them.
 */
export function prestartEngine(settings: Settings): void {
  if (prestarted) return;
  try {
    prestarted = startPool(planPool(settings));
  } catch {
    prestarted = undefined;
  }
}

/**
 * Closes a pool from {@link prestartEngine} that no engine took, as when a
 * command fails before it starts the engine.
 */
export async function releasePrestarted(): Promise<void> {
  const unused = prestarted;
  prestarted = undefined;
  // Close, not destroy: a thread ended while it still loads the ONNX
  // Runtime addon aborts the process. Close withdraws the lexicon, so a
  // thread that waits for it fails its warm-up and is ended once idle.
  if (unused) await unused.pool.close();
}

/** Returns the pool that settings call for, with a key that compares two such plans. */
function planPool(settings: Settings) {
  const threads = resolveThreads(settings);
  const thread: ThreadSettings = {
    modelDir: modelPath(settings),
    threshold: settings.threshold,
    batchTokens: settings.batchTokens,
    plugins: resolvePluginEntries(settings.plugins, process.cwd()),
    intraOpThreads: 1,
    memoryMb: settings.threadMemoryMb,
  };
  const taskTimeoutMs = settings.taskTimeoutSeconds * 1000;
  const key = JSON.stringify([threads, thread, taskTimeoutMs]);
  return { threads, thread, taskTimeoutMs, key };
}

function startPool(plan: ReturnType<typeof planPool>): StartedPool {
  const pool = new ExtractionPool(plan.threads, plan.thread, {
    taskTimeoutMs: plan.taskTimeoutMs,
  });
  // An idle piscina thread blocks in Atomics.wait, so its load goes on
  // only while it has a task: the warm-up tasks start now for that reason.
  const warming = pool.warmUp();
  warming.catch(() => undefined);
  return { pool, warming, key: plan.key };
}

/** Options of {@link startEngine}. */
export interface StartOptions {
  /**
   * Whether the command cuts documents into chunks itself (extract, eval),
   * so that chunkOverlap must fit the chunk length.
   * @defaultValue false
   */
  cutsChunks?: boolean;
}

/**
 * Verifies the model folder, checks the schema against it, starts the pool
 * (or takes the one {@link prestartEngine} started) and loads the model on
 * every thread.
 *
 * @throws ModelError for a missing or damaged model, RangeError or
 *   ConfigError for bad settings
 */
export async function startEngine(
  settings: Settings,
  log: Logger,
  options: StartOptions = {},
): Promise<Engine> {
  const plan = planPool(settings);
  const started = Date.now();
  // The threads load the model while the main thread checks the hashes,
  // builds the lexicon and loads plugins. No real task runs before all of
  // that succeeds.
  let early = prestarted;
  prestarted = undefined;
  if (early && early.key !== plan.key) {
    await early.pool.close();
    early = undefined;
  }
  const { pool, warming } = early ?? startPool(plan);
  let folder: ModelFolder;
  let chunkLength: number;
  let untrained: Engine['untrained'];
  try {
    folder = readModelFolder(plan.thread.modelDir);
    // Built here, from the verified file, while the threads load the graph.
    if (folder.lexiconPath !== undefined) {
      await pool.provideLexicon(folder.lexiconPath);
    }
    const plugins = await loadPlugins(plan.thread.plugins);
    // With the overlap when this process cuts chunks, so that a label
    // leaving too little text for it stops the start instead of failing
    // every long document. A worker runs chunks cut at enqueue.
    chunkLength = chunkLengthFor(
      folder.manifest.max_seq_len,
      settings.schema,
      settings.chunkChars,
      options.cutsChunks ? settings.chunkOverlap : 0,
    );
    untrained = (schema) => untrainedLabels(schema, folder, plugins);
    warnUntrained(settings.schema, folder, untrained, log);
    await warming;
  } catch (err) {
    await pool.close();
    throw err;
  }
  log.info(
    {
      model: `${folder.manifest.name}@${folder.manifest.version}`,
      threads: plan.threads,
      chunkLength,
      loadMs: Date.now() - started,
    },
    'engine started',
  );
  return {
    pool,
    manifest: folder.manifest,
    chunkLength,
    settings,
    untrained,
  };
}

function untrainedLabels(
  schema: string[],
  folder: ModelFolder,
  plugins: RulePlugin[],
): string[] {
  return schema.filter(
    (l) =>
      !folder.manifest.labels.includes(l) &&
      !plugins.some((p) => p.labels.includes(l)),
  );
}

function warnUntrained(
  schema: string[],
  folder: ModelFolder,
  untrained: Engine['untrained'],
  log: Logger,
): void {
  const labels = untrained(schema);
  if (labels.length > 0) {
    log.warn(
      { labels, trained: folder.manifest.labels },
      'schema labels the model was not trained on and no plugin covers; expect poor results for them',
    );
  }
}
