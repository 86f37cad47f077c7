/**
 * Benchmark of uie-batch: bare model, extract command, queue path, load cost,
 * FLOPs and optional FP32, teacher and PyTorch eager comparisons, measured
 * side by side in one sitting. See bench/README.md.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { PackedBatch } from '../src/model/span-model.js';
import { EXTRACT_TASK_CHUNKS } from '../src/pipeline/extract-file.js';
import {
  loadBareModel,
  timeBarePass,
  warmUp,
  type BareGraph,
  type BareModel,
  type BarePass,
} from './bare-model.js';
import { stopAllChildren } from './child-process.js';
import {
  deletePrefix,
  expectSameBytes,
  extractOutput,
  redisAnswers,
  timeExtract,
  timeExtractPhases,
  timeQueue,
  timeQueueOverlapped,
  timeScaleOut,
  type CliContext,
} from './cli-runs.js';
import { collectResults, describeMachine } from './collect-results.js';
import { loadCorpus, writeCorpusCsv, type BenchCorpus } from './corpus.js';
import { measureMatmulPeak } from './matmul-peak.js';
import {
  PROBE_SENTENCES,
  probeModelLoad,
  timeBareScript,
  timeBareScriptPair,
  writeAllSentences,
  writeHalfSentences,
  writeProbeSentences,
} from './measure-load.js';
import { HELP, parseBenchOptions, type BenchOptions } from './options.js';
import { formatReport } from './report.js';
import type { BenchResults } from './results.js';
import { Samples } from './stats.js';
import { timeTorchEager } from './torch-eager.js';

/** Files and models shared by every repeat. */
interface Inputs {
  options: BenchOptions;
  ctx: CliContext;
  redisUp: boolean;
  corpus: BenchCorpus;
  csv: string;
  oneCsv: string;
  probeSentences: string;
  allSentences: string;
  /** The two halves of the corpus, for two bare model scripts at once. */
  halfSentences: [string, string];
  groupSize: number;
  main: BareModel;
  /** The shared-text graph of the main folder, when it has one. */
  shared?: BareModel;
  fp32?: BareModel;
  teacher?: BareModel;
}

function progress(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

/** Counts of the bare passes of one repeat. */
interface RepeatPasses {
  bare: BarePass;
  shared?: BarePass;
}

/**
 * Runs one repeat of every measurement, one after another, so the
 * measurements of a repeat run close together in time under similar load.
 */
async function measureRepeat(
  inputs: Inputs,
  samples: Samples,
  run: number,
): Promise<RepeatPasses> {
  const { options, ctx, corpus, csv, groupSize } = inputs;
  const n = corpus.sentences.length;
  const barePass = async (name: string, model: BareModel) => {
    const pass = await timeBarePass(
      model,
      corpus.sentences,
      options.schema,
      groupSize,
    );
    samples.add(`${name}.runMs`, pass.runMs);
    samples.add(`${name}.extractMs`, pass.extractMs);
    return pass;
  };

  const pass = await barePass('bare', inputs.main);
  const shared = inputs.shared
    ? await barePass('shared', inputs.shared)
    : undefined;
  if (inputs.fp32) await barePass('fp32', inputs.fp32);
  if (inputs.teacher) await barePass('teacher', inputs.teacher);
  await measureBareScripts(inputs, samples);
  for (const threads of [1, 2]) {
    const { wallMs, ...phases } = await timeExtractPhases(ctx, csv, n, threads);
    samples.add(`extract${threads}`, wallMs);
    samples.addAll(`extract${threads}Phases`, phases);
  }
  if (inputs.redisUp) {
    const queue = await timeQueue(ctx, csv, n, `bench-${run}`);
    samples.addAll('queue', queue);
    samples.addAll('queueWork', queue.work);
    const overlap = await timeQueueOverlapped(ctx, csv, n, `bench-${run}`);
    samples.addAll('queueOverlap', overlap);
    await measureScaleOut(inputs, samples, run);
  }

  const probe = await probeModelLoad(
    options.model,
    inputs.probeSentences,
    options.schema,
    options.timeoutSeconds,
  );
  samples.addAll('load', probe);
  const extraProbes: [string, string | undefined][] = [
    ['fp32Load', options.fp32],
    ['teacherLoad', options.teacher],
  ];
  for (const [name, dir] of extraProbes) {
    if (!dir) continue;
    const extra = await probeModelLoad(
      dir,
      inputs.probeSentences,
      options.schema,
      options.timeoutSeconds,
    );
    samples.add(`${name}.loadMs`, extra.loadMs);
    samples.add(`${name}.rssGrowth`, extra.rssLoaded - extra.rssBefore);
    samples.add(`${name}.maxRss`, extra.maxRss);
  }
  samples.add(
    'load.coldExtractMs',
    await timeExtract(ctx, inputs.oneCsv, 1, 1),
  );
  samples.addAll('peak', await measureMatmulPeak());
  return { bare: pass, shared };
}

/**
 * Times the bare model script on the whole corpus, then two of them at once
 * on one half each.
 */
async function measureBareScripts(
  inputs: Inputs,
  samples: Samples,
): Promise<void> {
  const { options } = inputs;
  const single = await timeBareScript(
    options.model,
    inputs.allSentences,
    options.schema,
    options.timeoutSeconds,
  );
  samples.add('bareScript', single.wallMs);
  samples.add('bareScriptLoop', single.loopMs);
  const pair = await timeBareScriptPair(
    options.model,
    inputs.halfSentences,
    options.schema,
    options.timeoutSeconds,
  );
  samples.addAll('bareScriptPair', pair);
}

/**
 * Times each worker count of --workers draining the same corpus. Checks that
 * every export equals that of the smallest count and the output of
 * `extract --threads 1` from the same repeat.
 *
 * @throws Error when an export differs
 */
async function measureScaleOut(
  inputs: Inputs,
  samples: Samples,
  run: number,
): Promise<void> {
  const { options, ctx, corpus, csv } = inputs;
  let baseline: string | undefined;
  for (const workers of options.workers) {
    const name = `scale-out-${workers}-${run}`;
    const n = corpus.sentences.length;
    const times = await timeScaleOut(ctx, csv, n, name, workers);
    samples.addAll(`scaleOut.${workers}`, times);
    if (baseline === undefined) baseline = times.output;
    else expectSameBytes(times.output, baseline);
    expectSameBytes(times.output, extractOutput(ctx, 1));
  }
}

async function benchmark(
  options: BenchOptions,
  ctx: CliContext,
  redisUp: boolean,
): Promise<BenchResults> {
  const machine = describeMachine();
  const corpus = loadCorpus(options.sentences);
  const csv = join(ctx.dir, 'corpus.csv');
  const oneCsv = join(ctx.dir, 'one.csv');
  writeCorpusCsv(csv, corpus.sentences);
  writeCorpusCsv(oneCsv, corpus.sentences.slice(0, 1));
  const probeSentences = writeProbeSentences(ctx.dir, corpus.sentences);
  const allSentences = writeAllSentences(ctx.dir, corpus.sentences);
  const halfSentences = writeHalfSentences(ctx.dir, corpus.sentences);
  // The extract command sends this many chunks to a pool thread at once.
  const groupSize = EXTRACT_TASK_CHUNKS;

  const models: BareModel[] = [];
  const load = async (dir: string, graph: BareGraph = 'packed') => {
    const model = await loadBareModel(dir, graph);
    models.push(model);
    await warmUp(model, corpus.sentences, options.schema, groupSize);
    return model;
  };
  try {
    const main = await load(options.model);
    const shared = main.hasSharedText
      ? await load(options.model, 'shared')
      : undefined;
    const fp32 = options.fp32 ? await load(options.fp32) : undefined;
    const teacher = options.teacher ? await load(options.teacher) : undefined;
    const files = {
      corpus,
      csv,
      oneCsv,
      probeSentences,
      allSentences,
      halfSentences,
      groupSize,
    };
    const inputs: Inputs = {
      options,
      ctx,
      redisUp,
      ...files,
      main,
      shared,
      fp32,
      teacher,
    };

    const samples = new Samples();
    const recorded: PackedBatch[] = [];
    let lastPasses: RepeatPasses | undefined;
    for (let r = 1; r <= options.repeats; r++) {
      progress(`repeat ${r} of ${options.repeats}`);
      // The first pass keeps its packed batches for the PyTorch run.
      main.recording = r === 1 && options.torchRun ? recorded : undefined;
      lastPasses = await measureRepeat(inputs, samples, r);
      main.recording = undefined;
    }

    const torch = options.torchRun
      ? await timeTorch(options, ctx.dir, main, recorded)
      : 'not measured (pass --torch-run DIR)';
    const probeCount = Math.min(corpus.sentences.length, PROBE_SENTENCES);
    const measured = {
      options,
      corpus,
      groupSize,
      main,
      samples,
      redisUp,
      torch,
    };
    const counts = {
      lastPass: lastPasses!.bare,
      lastSharedPass: lastPasses!.shared,
      probeSentences: probeCount,
    };
    return collectResults({ ...measured, ...counts }, machine);
  } finally {
    for (const model of models) await model.release();
  }
}

function timeTorch(
  options: BenchOptions,
  dir: string,
  main: BareModel,
  batches: PackedBatch[],
) {
  progress('timing PyTorch eager');
  return timeTorchEager({
    python: options.python,
    runDir: options.torchRun!,
    modelVocab: join(options.model, main.manifest.vocab),
    batches,
    repeats: options.repeats,
    dir,
    timeoutSeconds: options.timeoutSeconds,
  });
}

async function main(argv: string[]): Promise<void> {
  const options = parseBenchOptions(argv);
  if (!options) {
    process.stdout.write(HELP);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'uie-bench-'));
  const prefix = `uie-bench-${process.pid}`;
  const redisUp = await redisAnswers(options.redisUrl);
  const cleanUp = async () => {
    rmSync(dir, { recursive: true, force: true });
    if (redisUp) await deletePrefix(options.redisUrl, prefix);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    progress(`${signal} received; stopping child processes and cleaning up`);
    void stopAllChildren()
      .then(cleanUp)
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const ctx: CliContext = {
    dir,
    modelDir: options.model,
    schema: options.schema,
    redisUrl: options.redisUrl,
    prefix,
    // Its own name, so a UIE_QUEUE of the caller's does not reach the
    // children while the bench counts producers under another name.
    queue: 'uie-bench',
    timeoutSeconds: options.timeoutSeconds,
  };
  try {
    const results = await benchmark(options, ctx, redisUp);
    process.stdout.write(
      (options.json ? JSON.stringify(results) : formatReport(results)) + '\n',
    );
  } finally {
    await cleanUp();
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(
    `bench failed: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exitCode = 1;
});
