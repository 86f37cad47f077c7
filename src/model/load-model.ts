import { ModelError } from '../errors/errors.js';
import type { ModelFolder } from './model-folder.js';
import type { SessionOptions } from './session.js';
import { SharedTextModel } from './shared-text-model.js';
import { SpanModel } from './span-model.js';

/** Either graph of a model folder. Its `graph` field decides which batch type run() takes. */
export type ExtractorModel = SpanModel | SharedTextModel;

/** Options for loading the model of a folder. */
export interface LoadModelOptions extends SessionOptions {
  /**
   * Graph to load: `auto` takes the shared-text graph when the folder
   * has one and the packed graph otherwise, `packed` always takes the packed
   * graph, and `shared` requires the shared-text graph.
   * @defaultValue 'auto'
   */
  graph?: 'auto' | 'packed' | 'shared';
}

/**
 * Loads one graph of a model folder. Only one is loaded, because each pool
 * thread has its own session and both graphs carry the same weights.
 *
 * @throws ModelError when `graph` is `shared` and the folder has no
 *   shared-text graph, or when the graph cannot be loaded.
 */
export async function loadExtractorModel(
  folder: ModelFolder,
  options: LoadModelOptions = {},
): Promise<ExtractorModel> {
  const { graph = 'auto', ...session } = options;
  const shared = folder.sharedTextPath;
  if (graph === 'shared' && shared === undefined) {
    throw new ModelError(
      `model folder ${folder.dir} has no shared-text graph: model.json has no "shared_text" field; ` +
        're-export it with training/export.py --shared-text',
    );
  }
  if (graph !== 'packed' && shared !== undefined) {
    return SharedTextModel.load(shared, session);
  }
  return SpanModel.load(folder.onnxPath, session);
}
