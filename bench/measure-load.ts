import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { runChild, type ChildResult } from './child-process.js';
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
 * Writes the first and the second half of the sentences to two files, for
 * two bare model scripts run at once, and returns both paths. With an odd
 * count the first half has one sentence more.
 */
export function writeHalfSentences(
  dir: string,
  sentences: string[],
): [string, string] {
  const middle = Math.ceil(sentences.length / 2);
  const halves = [sentences.slice(0, middle), sentences.slice(middle)];
  const paths = halves.map((half, i) => {
    const path = join(dir, `half-sentences-${i + 1}.json`);
    writeFileSync(path, JSON.stringify(half));
    return path;
  });
  return [paths[0], paths[1]];
}

/** Wall time of a bare model script run and its extract() loop time, in ms. */
export interface BareScriptTimes {
  wallMs: number;
  loopMs: number;
}

/**
 * Times bench/load-probe.js over the whole corpus from spawn to exit: what
 * a minimal script that loads the model and loops over the sentences costs,
 * Node.js start and model load included, for comparison with the extract
 * command's wall time. Also returns the loop time the script reports.
 */
export async function timeBareScript(
  modelDir: string,
  sentencesPath: string,
  schema: string[],
  timeoutSeconds: number,
): Promise<BareScriptTimes> {
  const result = await runProbe(
    modelDir,
    sentencesPath,
    schema,
    timeoutSeconds,
  );
  return { wallMs: result.wallMs, loopMs: probeOutput(result).loopMs };
}

/**
 * Starts two bare model scripts at the same moment, each on one file of
 * writeHalfSentences. Returns the time from spawning the first to the exit
 * of the last, and the longer of the two loop times.
 *
 * @throws the error of a script that failed, after both have exited
 */
export async function timeBareScriptPair(
  modelDir: string,
  halves: [string, string],
  schema: string[],
  timeoutSeconds: number,
): Promise<BareScriptTimes> {
  const started = performance.now();
  const runs = halves.map((path) =>
    runProbe(modelDir, path, schema, timeoutSeconds),
  );
  // Promise.all would settle at the first failure while the other script
  // still runs and competes with the next measurement.
  const settled = await Promise.allSettled(runs);
  const wallMs = performance.now() - started;
  const loops: number[] = [];
  for (const s of settled) {
    if (s.status === 'rejected') throw s.reason;
    loops.push(probeOutput(s.value).loopMs);
  }
  return { wallMs, loopMs: Math.max(...loops) };
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
  const result = await runProbe(
    modelDir,
    sentencesPath,
    schema,
    timeoutSeconds,
  );
  return probeOutput(result);
}

function runProbe(
  modelDir: string,
  sentencesPath: string,
  schema: string[],
  timeoutSeconds: number,
): Promise<ChildResult> {
  const args = [PROBE, modelDir, sentencesPath, schema.join(',')];
  return runChild(process.execPath, args, {
    timeoutSeconds,
    env: { LOG_LEVEL: 'warn' },
  });
}

function probeOutput(result: ChildResult): ProbeResult {
  return JSON.parse(result.stdout.trim()) as ProbeResult;
}
