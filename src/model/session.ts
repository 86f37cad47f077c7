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
 * @param path - the ONNX file, named in errors
 * @throws ModelError naming the file and every input's name, type and
 *   dims, with the ONNX Runtime error as its cause.
 */
export async function runSession(
  session: ort.InferenceSession,
  path: string,
  feeds: Record<string, ort.Tensor>,
): Promise<ort.InferenceSession.OnnxValueMapType> {
  try {
    return await session.run(feeds);
  } catch (err) {
    const shapes = Object.entries(feeds)
      .map(([name, t]) => `${name} ${t.type} [${t.dims.join(', ')}]`)
      .join('; ');
    throw new ModelError(
      `ONNX model ${path}: run failed with inputs ${shapes}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Output element types the engine reads as probabilities. */
const PROBABILITY_TYPES: readonly string[] = ['float32', 'float64'];

/**
 * Checks the declared type and rank of an output the engine reads, so that
 * a float16 or integer output is rejected at load instead of having its
 * bits read as float32 scores.
 *
 * @param shapes - the shapes the engine accepts; a name stands for any
 *   size of that axis, a number for that size only
 * @throws ModelError naming the file, the output and its type or shape
 */
export function checkProbabilityOutput(
  session: ort.InferenceSession,
  path: string,
  name: string,
  shapes: readonly (readonly (string | number)[])[],
): void {
  const meta = session.outputMetadata.find((m) => m.name === name);
  if (!meta?.isTensor || !PROBABILITY_TYPES.includes(meta.type)) {
    const type = meta?.isTensor ? `type ${meta.type}` : 'no tensor type';
    throw new ModelError(
      `ONNX model ${path}: output ${name} has ${type}; the engine reads float32 or float64 probabilities, so export the model with float32 outputs`,
    );
  }
  // An empty shape means that the rank is unknown, so only the probe run
  // at load checks the dims.
  const fits = (expected: readonly (string | number)[]) =>
    expected.length === meta.shape.length &&
    expected.every((e, i) => {
      const d = meta.shape[i];
      return typeof e === 'string' || !isFixedSize(d) || d === e;
    });
  if (meta.shape.length > 0 && !shapes.some(fits)) {
    throw new ModelError(
      `ONNX model ${path}: output ${name} has shape ${formatShape(meta.shape)}; the engine reads ${shapes.map(formatShape).join(' or ')}`,
    );
  }
}

/**
 * Checks the dims of an output after a run, since a graph that transposes
 * or slices its output would otherwise give empty or shifted spans.
 *
 * @param accepted - the dims the engine can read for this batch
 * @param inputs - returns the input dims in words, such as
 *   `input dims [2, 5]`; called only for the error message
 * @throws ModelError naming the file, the output and its dims
 */
export function checkOutputDims(
  path: string,
  name: string,
  dims: readonly number[],
  accepted: readonly (readonly number[])[],
  inputs: () => string,
): void {
  const same = (a: readonly number[]) =>
    a.length === dims.length && a.every((d, i) => d === dims[i]);
  if (!accepted.some(same)) {
    throw new ModelError(
      `ONNX model ${path} returned output ${name} with dims ${formatShape(dims)} for ${inputs()}; the engine reads ${accepted.map(formatShape).join(' or ')}, one probability per token`,
    );
  }
}

/** Formats a shape for messages, with `?` for an unnamed dynamic axis. */
export function formatShape(shape: readonly (string | number)[]): string {
  return `[${shape.map((d) => (d === '' ? '?' : d)).join(', ')}]`;
}

/**
 * Returns whether an axis of a declared shape has a fixed size. ONNX Runtime
 * 1.31 returns a dynamic axis as a string, named or empty, even one stored
 * as -1. A negative number still counts as dynamic, in case a version
 * returns it.
 */
export function isFixedSize(dim: string | number): dim is number {
  return typeof dim === 'number' && dim >= 0;
}
