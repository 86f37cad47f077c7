import * as ort from 'onnxruntime-node';

import { ModelError } from '../errors/errors.js';

// ONNX Runtime's warnings go straight to stderr, past the logger, and the
// usual one reports only that a read-only home folder cannot keep its
// telemetry id. Load errors still reach the caller as exceptions.
ort.env.logLevel = 'error';

/** Options for one ONNX Runtime session. */
export interface SessionOptions {
  /**
   * Threads ONNX Runtime may use inside one run. One per pool thread keeps
   * the pool from oversubscribing the cores.
   * @defaultValue 1
   */
  intraOpThreads?: number;
}

/**
 * Opens an ONNX file in a session that runs its nodes one after another.
 *
 * @throws ModelError when ONNX Runtime cannot load the file.
 */
export async function createSession(
  path: string,
  options: SessionOptions = {},
): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(path, {
      intraOpNumThreads: options.intraOpThreads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (err) {
    throw new ModelError(
      `cannot load ONNX model ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/**
 * Runs a session on the given feeds.
 *
 * @throws ModelError naming every input's name, type and dims, with the
 *   ONNX Runtime error as its cause.
 */
export async function runSession(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
): Promise<ort.InferenceSession.OnnxValueMapType> {
  try {
    return await session.run(feeds);
  } catch (err) {
    const shapes = Object.entries(feeds)
      .map(([name, t]) => `${name} ${t.type} [${t.dims.join(', ')}]`)
      .join('; ');
    throw new ModelError(
      `ONNX run failed with inputs ${shapes}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
