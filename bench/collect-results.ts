import { cpus, loadavg, totalmem } from 'node:os';

import * as ort from 'onnxruntime-node';

import type { BareModel, BarePass } from './bare-model.js';
import { textTokensOverRows } from './bare-model.js';
import type { BenchCorpus } from './corpus.js';
import { MATMUL_SIZE } from './matmul-peak.js';
import type { BenchOptions } from './options.js';
import {
  computeRatios,
  type BenchResults,
  type ExtractPhasesResult,
  type ExtraLoadResult,
  type FlopsResult,
  type MachineInfo,
  type QueueResult,
  type ScaleOutResult,
  type SharedResult,
  type Skipped,
  type WorkPhasesResult,
  workerCount,
} from './results.js';
import type { Samples } from './stats.js';
import type { TorchResult } from './torch-eager.js';

/** Everything measured, before it is summarized. */
export interface Measured {
  options: BenchOptions;
  corpus: BenchCorpus;
  groupSize: number;
  probeSentences: number;
  main: BareModel;
  /** Counts of the last bare pass; every pass packs the same batches. */
  lastPass: BarePass;
  /** Counts of the last shared-text pass, when the folder has that graph. */
  lastSharedPass?: BarePass;
  samples: Samples;
  redisUp: boolean;
  torch: TorchResult | Skipped;
}

function extraLoad(samples: Samples, name: string): ExtraLoadResult {
  return {
    loadMs: samples.summary(`${name}.loadMs`),
    rssGrowth: samples.summary(`${name}.rssGrowth`),
    maxRss: samples.summary(`${name}.maxRss`),
  };
}

/** Describes the machine the bench runs on, at the time of the call. */
export function describeMachine(): MachineInfo {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cpus: cpus().length,
    loadAverage: loadavg()[0],
    totalMemory: totalmem(),
    node: process.version,
    onnxruntime: ort.env.versions.node ?? 'unknown',
    date: new Date().toISOString(),
  };
}

/** Summarizes the samples into medians and computes the ratios. */
export function collectResults(
  m: Measured,
  machine: MachineInfo,
): BenchResults {
  const { options, samples } = m;
  const bare = {
    runMs: samples.summary('bare.runMs'),
    extractMs: samples.summary('bare.extractMs'),
    batches: m.lastPass.batches,
    rows: m.lastPass.rows,
    positions: m.lastPass.positions,
    textTokens: textTokensOverRows(m.main, m.corpus.sentences, options.schema),
  };
  const results: Omit<BenchResults, 'ratios'> = {
    machine,
    corpus: {
      model: options.model,
      source: m.corpus.source,
      sentences: m.corpus.sentences.length,
      repeated: m.corpus.repeated,
      meanChars: m.corpus.meanChars,
      schema: options.schema,
      repeats: options.repeats,
      groupSize: m.groupSize,
    },
    bare,
    shared: sharedResult(m),
    bareScript: samples.summary('bareScript'),
    bareScriptLoop: samples.summary('bareScriptLoop'),
    bareScriptPair: {
      wallMs: samples.summary('bareScriptPair.wallMs'),
      loopMs: samples.summary('bareScriptPair.loopMs'),
    },
    extract1: samples.summary('extract1'),
    extract2: samples.summary('extract2'),
    extract1Phases: extractPhasesResult(samples, 'extract1Phases'),
    extract2Phases: extractPhasesResult(samples, 'extract2Phases'),
    queue: queueResult(m),
    queueWork: queueWorkResult(m),
    scaleOut: scaleOutResult(m),
    fp32: options.fp32
      ? samples.summary('fp32.runMs')
      : 'not measured (pass --fp32 DIR)',
    teacher: options.teacher
      ? samples.summary('teacher.runMs')
      : 'not measured (pass --teacher DIR)',
    torch: m.torch,
    load: {
      loadMs: samples.summary('load.loadMs'),
      rssBefore: samples.summary('load.rssBefore'),
      rssLoaded: samples.summary('load.rssLoaded'),
      maxRss: samples.summary('load.maxRss'),
      coldExtractMs: samples.summary('load.coldExtractMs'),
      probeSentences: m.probeSentences,
    },
    fp32Load: options.fp32
      ? extraLoad(samples, 'fp32Load')
      : 'not measured (pass --fp32 DIR)',
    teacherLoad: options.teacher
      ? extraLoad(samples, 'teacherLoad')
      : 'not measured (pass --teacher DIR)',
    flops: flopsResult(m, bare.textTokens, bare.runMs.median),
  };
  return { ...results, ratios: computeRatios(results) };
}

function sharedResult(m: Measured): SharedResult | Skipped {
  const pass = m.lastSharedPass;
  if (!pass) return 'not measured (model.json has no shared_text)';
  return {
    runMs: m.samples.summary('shared.runMs'),
    extractMs: m.samples.summary('shared.extractMs'),
    batches: pass.batches,
    rows: pass.rows,
    positions: pass.positions,
  };
}

function noRedis(m: Measured): Skipped {
  const url = m.options.redisUrl.replace(/\/\/[^@]*@/, '//***@');
  return `not measured (no Redis answered at ${url})`;
}

function queueResult(m: Measured): QueueResult | Skipped {
  if (!m.redisUp) return noRedis(m);
  return {
    enqueueMs: m.samples.summary('queue.enqueueMs'),
    workMs: m.samples.summary('queue.workMs'),
    exportMs: m.samples.summary('queue.exportMs'),
    totalMs: m.samples.summary('queue.totalMs'),
    overlap: {
      queuedMs: m.samples.summary('queueOverlap.queuedMs'),
      exportMs: m.samples.summary('queueOverlap.exportMs'),
      totalMs: m.samples.summary('queueOverlap.totalMs'),
    },
  };
}

function extractPhasesResult(
  samples: Samples,
  name: string,
): ExtractPhasesResult {
  return {
    startupMs: samples.summary(`${name}.startupMs`),
    loadMs: samples.summary(`${name}.loadMs`),
    extractionMs: samples.summary(`${name}.extractionMs`),
    exitMs: samples.summary(`${name}.exitMs`),
  };
}

function queueWorkResult(m: Measured): WorkPhasesResult | Skipped {
  if (!m.redisUp) return noRedis(m);
  return {
    startupMs: m.samples.summary('queueWork.startupMs'),
    loadMs: m.samples.summary('queueWork.loadMs'),
    connectMs: m.samples.summary('queueWork.connectMs'),
    jobsMs: m.samples.summary('queueWork.jobsMs'),
    stopMs: m.samples.summary('queueWork.stopMs'),
  };
}

function scaleOutResult(m: Measured): ScaleOutResult | Skipped {
  if (!m.redisUp) return noRedis(m);
  const n = m.corpus.sentences.length;
  const rows = m.options.workers.map((workers) => {
    const name = (field: string) => `scaleOut.${workers}.${field}`;
    const workMs = m.samples.summary(name('workMs'));
    return {
      workers,
      enqueueMs: m.samples.summary(name('enqueueMs')),
      workMs,
      exportMs: m.samples.summary(name('exportMs')),
      busyWorkers: m.samples.summary(name('busyWorkers')),
      sentencesPerSecond: n / (workMs.median / 1000),
    };
  });
  const base = m.options.workers[0];
  const identicalTo = ['extract --threads 1 output'];
  if (m.options.workers.length > 1)
    identicalTo.unshift(`export of ${workerCount(base)}`);
  return { rows, identicalTo };
}

function flopsResult(
  m: Measured,
  textTokens: number,
  bareMs: number,
): FlopsResult {
  const peak = {
    size: MATMUL_SIZE,
    gflops: m.samples.summary('peak.gflops'),
    ms: m.samples.summary('peak.medianMs'),
  };
  // NOTE: flops_per_token is optional in model.json, so ModelManifest lacks it.
  const perToken = (m.main.manifest as unknown as Record<string, unknown>)
    .flops_per_token;
  if (typeof perToken !== 'number')
    return { perToken: 'not in model.json', peak };

  const achievedGflops = (perToken * textTokens) / (bareMs / 1000) / 1e9;
  return {
    perToken,
    peak,
    achievedGflops,
    fractionOfPeak: achievedGflops / peak.gflops.median,
  };
}
