import type { Logger } from 'pino';

import { chunkLengthFor } from '../chunking/plan.js';
import { modelPath, resolveThreads, type Settings } from '../config/config.js';
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
}

/**
 * Verifies the model folder, checks the schema against it, starts the pool
 * and loads the model on every thread.
 *
 * @throws ModelError for a missing or damaged model, RangeError for bad settings
 */
export async function startEngine(
  settings: Settings,
  log: Logger,
): Promise<Engine> {
  const modelDir = modelPath(settings);
  const pluginEntries = resolvePluginEntries(settings.plugins, process.cwd());
  const threads = resolveThreads(settings);
  const started = Date.now();
  // The threads start loading the model now, so their start overlaps the
  // hash check and plugin loading below. No task runs before both succeed.
  const pool = new ExtractionPool(
    threads,
    {
      modelDir,
      threshold: settings.threshold,
      batchTokens: settings.batchTokens,
      plugins: pluginEntries,
      intraOpThreads: 1,
      memoryMb: settings.threadMemoryMb,
    },
    { taskTimeoutMs: settings.taskTimeoutSeconds * 1000 },
  );
  let folder: ModelFolder;
  let chunkLength: number;
  try {
    folder = readModelFolder(modelDir);
    // Built here, from the verified file, while the threads load the graph.
    if (folder.lexiconPath !== undefined) pool.provideLexicon(folder.lexiconPath);
    const plugins = await loadPlugins(pluginEntries);
    chunkLength = chunkLengthFor(
      folder.manifest.max_seq_len,
      settings.schema,
      settings.chunkChars,
    );
    warnUntrained(settings.schema, folder, plugins, log);
    await pool.warmUp();
  } catch (err) {
    await pool.close();
    throw err;
  }
  log.info(
    {
      model: `${folder.manifest.name}@${folder.manifest.version}`,
      threads,
      chunkLength,
      loadMs: Date.now() - started,
    },
    'engine started',
  );
  return { pool, manifest: folder.manifest, chunkLength, settings };
}

function warnUntrained(
  schema: string[],
  folder: ModelFolder,
  plugins: RulePlugin[],
  log: Logger,
): void {
  const untrained = schema.filter(
    (l) =>
      !folder.manifest.labels.includes(l) &&
      !plugins.some((p) => p.labels.includes(l)),
  );
  if (untrained.length > 0) {
    log.warn(
      { labels: untrained, trained: folder.manifest.labels },
      'schema labels the model was not trained on and no plugin covers; expect poor results for them',
    );
  }
}
