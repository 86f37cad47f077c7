import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve, win32 } from 'node:path';

import { ModelError } from '../errors/errors.js';

/** The metadata file `model.json` of a model folder. */
export interface ModelManifest {
  name: string;
  version: string;
  /** File name of the ONNX graph inside the folder. */
  onnx: string;
  /**
   * File name of the optional shared-text graph: the same model with inputs
   * `text_ids`, `text_mask` [batch, seq], `prompt_ids`, `prompt_mask`
   * [labels, plen] and outputs [batch, labels, seq], which encodes each text
   * once for all labels. `training/export.py` writes it for its own models,
   * and a PaddleNLP UIE export has none.
   */
  shared_text?: string;
  /** File name of the vocabulary, one token per line. */
  vocab: string;
  /**
   * File name of the optional lexicon, for models whose graphs take the
   * `lexicon_bits` input: dictionary words with their classes, one
   * `word<TAB>classes` line each (`training/lexicon.py`).
   */
  lexicon?: string;
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
  /** Absolute path of the shared-text graph, when the manifest names one. */
  sharedTextPath?: string;
  vocabPath: string;
  /** Absolute path of the lexicon, when the manifest names one. */
  lexiconPath?: string;
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
    // JSON.parse rejects the byte order mark that some Windows editors write.
    manifest = JSON.parse(raw.replace(/^\uFEFF/, '')) as ModelManifest;
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
    for (const file of modelFiles(manifest)) {
      verifyFile(abs, file, manifest.sha256[file]);
    }
  }
  const shared = manifest.shared_text;
  const lexicon = manifest.lexicon;
  return {
    dir: abs,
    manifest,
    onnxPath: join(abs, manifest.onnx),
    ...(shared !== undefined ? { sharedTextPath: join(abs, shared) } : {}),
    vocabPath: join(abs, manifest.vocab),
    ...(lexicon !== undefined ? { lexiconPath: join(abs, lexicon) } : {}),
  };
}

/** Returns the files of a manifest that must carry a SHA-256 digest. */
function modelFiles(m: ModelManifest): string[] {
  const files = [m.onnx, m.vocab];
  if (m.shared_text !== undefined) files.push(m.shared_text);
  if (m.lexicon !== undefined) files.push(m.lexicon);
  return files;
}

/**
 * Largest max_seq_len accepted. It is 16 times the 512 tokens that
 * BERT-style encoders are usually trained with, so a larger value is most
 * likely a typing error.
 */
const MAX_SEQ_LEN = 8192;

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
  for (const key of ['shared_text', 'lexicon'] as const) {
    const value: unknown = m[key];
    if (
      value !== undefined &&
      (typeof value !== 'string' || value.length === 0)
    ) {
      throw new ModelError(
        `${path}: field "${key}" must be a non-empty string when present, got ${JSON.stringify(value)}`,
      );
    }
  }
  checkFileNames(m, path);
  if (!Array.isArray(m.labels) || m.labels.some((l) => typeof l !== 'string')) {
    throw new ModelError(`${path}: field "labels" must be an array of strings`);
  }
  if (
    !Number.isInteger(m.max_seq_len) ||
    m.max_seq_len < 16 ||
    m.max_seq_len > MAX_SEQ_LEN
  ) {
    throw new ModelError(
      `${path}: field "max_seq_len" must be an integer from 16 to ${MAX_SEQ_LEN}, got ${JSON.stringify(m.max_seq_len)}`,
    );
  }
  if (typeof m.sha256 !== 'object' || m.sha256 === null) {
    throw new ModelError(
      `${path}: field "sha256" must map file names to hex digests`,
    );
  }
  for (const file of modelFiles(m)) {
    if (typeof m.sha256[file] !== 'string') {
      throw new ModelError(`${path}: field "sha256" has no digest for ${file}`);
    }
  }
}

/**
 * Checks that the file fields name files inside the folder, since an
 * absolute path would be joined under the folder and not be found there,
 * and a `..` path makes a folder that is incomplete once copied (into a
 * container image, say). path.win32 treats POSIX absolute paths as
 * absolute too, and also drive letters and backslashes.
 */
function checkFileNames(m: ModelManifest, path: string): void {
  for (const key of ['onnx', 'vocab', 'shared_text', 'lexicon'] as const) {
    const value = m[key];
    if (value === undefined) continue;
    const expected = `${path}: field "${key}" must name a file inside the model folder, relative to it, such as "${win32.basename(value)}"`;
    if (win32.isAbsolute(value)) {
      throw new ModelError(
        `${expected}; got the absolute path ${JSON.stringify(value)}`,
      );
    }
    if (value.split(/[\\/]/u).includes('..')) {
      throw new ModelError(
        `${expected}; got ${JSON.stringify(value)}, which leaves the folder`,
      );
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
