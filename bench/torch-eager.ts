import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { PackedBatch } from '../src/model/span-model.js';
import { runChild } from './child-process.js';
import { ROOT } from './options.js';

/** Output of bench/torch_student.py. */
export interface TorchResult {
  /** Seconds of each timed pass over all batches. */
  seconds: number[];
  median: number;
  batches: number;
  rows: number;
  torch: string;
  threads: number;
}

/** Settings of the PyTorch eager measurement. */
export interface TorchRequest {
  python: string;
  /** Training run folder with best.pt and vocab.txt. */
  runDir: string;
  /** vocab.txt of the ONNX model that packed the batches. */
  modelVocab: string;
  batches: PackedBatch[];
  repeats: number;
  /** Temp folder for the batches file. */
  dir: string;
  timeoutSeconds: number;
}

/**
 * Writes the packed batches to JSON and times them with
 * bench/torch_student.py.
 *
 * @returns the script's result, or a reason why nothing was measured
 */
export async function timeTorchEager(
  request: TorchRequest,
): Promise<TorchResult | string> {
  // Packed ids only mean the same text when both vocabularies are the same file.
  const runVocab = join(request.runDir, 'vocab.txt');
  if (!sameBytes(runVocab, request.modelVocab)) {
    return `not measured (${runVocab} is missing or differs from ${request.modelVocab})`;
  }
  const path = join(request.dir, 'torch-batches.json');
  writeFileSync(path, JSON.stringify({ batches: request.batches.map(toJson) }));

  const script = join(ROOT, 'bench/torch_student.py');
  const args = [script, '--run', request.runDir, '--batches', path];
  const result = await runChild(
    request.python,
    [...args, '--repeats', String(request.repeats)],
    {
      timeoutSeconds: request.timeoutSeconds,
      env: { OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
    },
  );
  const lastLine = result.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(lastLine) as TorchResult;
}

function toJson(batch: PackedBatch) {
  return {
    rows: batch.rows,
    seq_len: batch.seqLen,
    input_ids: Array.from(batch.inputIds, Number),
    token_type_ids: Array.from(batch.tokenTypeIds, Number),
    attention_mask: Array.from(batch.attentionMask, Number),
    ...(batch.lexiconBits
      ? { lexicon_bits: Array.from(batch.lexiconBits, Number) }
      : {}),
  };
}

function sameBytes(a: string, b: string): boolean {
  try {
    return readFileSync(a).equals(readFileSync(b));
  } catch {
    return false;
  }
}
