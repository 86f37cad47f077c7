import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { ModelError } from '../errors/errors.js';

/** The metadata file `model.json` of a model folder. */
export interface ModelManifest {
  name: string;
  version: string;
  /** File name of the ONNX graph inside the folder. */
  onnx: string;
  /** File name of the vocabulary, one token per line. */
  vocab: string;
  /** Labels the model was trained on; other prompts give unreliable output. */
  labels: string[];
  /** Longest packed sequence the model accepts, in tokens. */
  max_seq_len: number;
  /** SHA-256 hex digest of each file, keyed by file name. */
  sha256: Record<string, string>;
}

/** A verified model folder with absolute file paths. */
export interface ModelFolder {
  dir: string;
  manifest: ModelManifest;
  onnxPath: string;
  vocabPath: string;
}

/**
 * Reads `model.json` in dir and checks every file against its SHA-256.
 *
 * @throws ModelError naming the file that is missing, malformed or damaged.
 */
export function readModelFolder(dir: string, verify = true): ModelFolder {
  const abs = resolve(dir);
  const manifestPath = join(abs, 'model.json');
  let raw: string;
  try {
    raw = readFileSync(manifestPath, 'utf8');
  } catch (err) {
    throw new ModelError(
      `model metadata not found: ${manifestPath}; set modelDir (UIE_MODEL_DIR) to a folder with model.json`,
      { cause: err },
    );
  }
  let manifest: ModelManifest;
  try {
    manifest = JSON.parse(raw) as ModelManifest;
  } catch (err) {
    throw new ModelError(
      `invalid JSON in ${manifestPath}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  checkManifest(manifest, manifestPath);

  if (verify) {
    for (const file of [manifest.onnx, manifest.vocab]) {
      verifyFile(abs, file, manifest.sha256[file]);
    }
  }
  return {
    dir: abs,
    manifest,
    onnxPath: join(abs, manifest.onnx),
    vocabPath: join(abs, manifest.vocab),
  };
}

function checkManifest(m: ModelManifest, path: string): void {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) {
    throw new ModelError(
      `${path}: expected a JSON object with name, version, onnx, vocab, labels, max_seq_len and sha256`,
    );
  }
  const strings = ['name', 'version', 'onnx', 'vocab'] as const;
  for (const key of strings) {
    if (typeof m[key] !== 'string' || m[key].length === 0) {
      throw new ModelError(
        `${path}: field "${key}" must be a non-empty string`,
      );
    }
  }
  if (!Array.isArray(m.labels) || m.labels.some((l) => typeof l !== 'string')) {
    throw new ModelError(`${path}: field "labels" must be an array of strings`);
  }
  if (!Number.isInteger(m.max_seq_len) || m.max_seq_len < 16) {
    throw new ModelError(
      `${path}: field "max_seq_len" must be an integer >= 16, got ${String(m.max_seq_len)}`,
    );
  }
  if (typeof m.sha256 !== 'object' || m.sha256 === null) {
    throw new ModelError(
      `${path}: field "sha256" must map file names to hex digests`,
    );
  }
  for (const file of [m.onnx, m.vocab]) {
    if (typeof m.sha256[file] !== 'string') {
      throw new ModelError(`${path}: field "sha256" has no digest for ${file}`);
    }
  }
}

function verifyFile(dir: string, file: string, expected: string): void {
  const path = join(dir, file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ModelError(`model file not found: ${path}`, { cause: err });
    }
    throw new ModelError(
      `model file unreadable: ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== expected.toLowerCase()) {
    throw new ModelError(
      `model file is damaged or was replaced: ${path} has SHA-256 ${actual}, model.json expects ${expected}`,
    );
  }
}
