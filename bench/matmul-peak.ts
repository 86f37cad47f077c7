import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import * as ort from 'onnxruntime-node';

import { ROOT } from './options.js';
import { median } from './stats.js';

/** Side of the square matrices: 512 × 512 times 512 × 512. */
export const MATMUL_SIZE = 512;
const SIZE = MATMUL_SIZE;
const TIMED_RUNS = 7;

/** Measured single-thread float32 GEMM speed. */
export interface MatmulPeak {
  /** Median time of one MatMul, in milliseconds. */
  medianMs: number;
  gflops: number;
}

/**
 * Runs bench/matmul.onnx (one float32 MatMul) with one intra-op thread and
 * returns the median speed over several runs, after one warm-up run.
 */
export async function measureMatmulPeak(): Promise<MatmulPeak> {
  const session = await ort.InferenceSession.create(
    join(ROOT, 'bench/matmul.onnx'),
    {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    },
  );
  try {
    const feeds = {
      a: new ort.Tensor('float32', randomFloats(SIZE * SIZE), [SIZE, SIZE]),
      b: new ort.Tensor('float32', randomFloats(SIZE * SIZE), [SIZE, SIZE]),
    };
    await session.run(feeds);
    const times: number[] = [];
    for (let i = 0; i < TIMED_RUNS; i++) {
      const started = performance.now();
      await session.run(feeds);
      times.push(performance.now() - started);
    }
    const medianMs = median(times);
    const flops = 2 * SIZE ** 3;
    return { medianMs, gflops: flops / (medianMs / 1000) / 1e9 };
  } finally {
    await session.release();
  }
}

function randomFloats(count: number): Float32Array {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = Math.random() - 0.5;
  return values;
}
