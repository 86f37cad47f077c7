import type { Logger } from 'pino';

import { chunkLengthFor } from '../chunking/plan.js';
import { modelPath, resolveThreads, type Settings } from '../config/config.js';
import { ExtractionPool } from '../engine/pool.js';
import { readModelFolder, type ModelManifest } from '../model/model-folder.js';
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
  const folder = readModelFolder(modelPath(settings));
  const pluginEntries = resolvePluginEntries(settings.plugins, process.cwd());
  const plugins = await loadPlugins(pluginEntries);
  const chunkLength = chunkLengthFor(
    folder.manifest.max_seq_len,
    settings.schema,
    settings.chunkChars,
  );
  const untrained = settings.schema.filter(
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

  const threads = resolveThreads(settings);
  const started = Date.now();
  const pool = new ExtractionPool(threads, {
    modelDir: folder.dir,
    threshold: settings.threshold,
    batchTokens: settings.batchTokens,
    plugins: pluginEntries,
    intraOpThreads: 1,
    memoryMb: settings.threadMemoryMb,
  });
  try {
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
