import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { runChild } from './child-process.js';
import type { ProbeResult } from './load-probe.js';

/** Sentences the probe extracts from before reading its peak memory. */
export const PROBE_SENTENCES = 100;

const PROBE = join(dirname(fileURLToPath(import.meta.url)), 'load-probe.js');

/** Writes the probe's sentences once; returns the file path. */
export function writeProbeSentences(dir: string, sentences: string[]): string {
  const path = join(dir, 'probe-sentences.json');
  writeFileSync(path, JSON.stringify(sentences.slice(0, PROBE_SENTENCES)));
  return path;
}

/** Writes every sentence for the bare model script; returns the file path. */
export function writeAllSentences(dir: string, sentences: string[]): string {
  const path = join(dir, 'all-sentences.json');
  writeFileSync(path, JSON.stringify(sentences));
  return path;
}

/**
 * Times bench/load-probe.js over the whole corpus from spawn to exit: what
 * a minimal script that loads the model and loops over the sentences costs,
 * Node.js start and model load included, for comparison with the extract
 * command's wall time.
 */
export async function timeBareScript(
  modelDir: string,
  sentencesPath: string,
  schema: string[],
  timeoutSeconds: number,
): Promise<number> {
  const args = [PROBE, modelDir, sentencesPath, schema.join(',')];
  const result = await runChild(process.execPath, args, {
    timeoutSeconds,
    env: { LOG_LEVEL: 'warn' },
  });
  return result.wallMs;
}

/**
 * Runs bench/load-probe.js in a fresh Node.js process: model load time,
 * RSS before and after the load, and peak RSS after extracting.
 */
export async function probeModelLoad(
  modelDir: string,
  sentencesPath: string,
  schema: string[],
  timeoutSeconds: number,
): Promise<ProbeResult> {
  const args = [PROBE, modelDir, sentencesPath, schema.join(',')];
  const result = await runChild(process.execPath, args, {
    timeoutSeconds,
    env: { LOG_LEVEL: 'warn' },
  });
  return JSON.parse(result.stdout.trim()) as ProbeResult;
}
