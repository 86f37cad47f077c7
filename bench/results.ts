import type { Summary } from './stats.js';
import type { TorchResult } from './torch-eager.js';

/** A measurement that was skipped, with the reason shown in its row. */
export type Skipped = string;

/** Machine and software of one bench run. */
export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  /** 1-minute load average when the bench started; well above 0, other work shared the cores. */
  loadAverage: number;
  totalMemory: number;
  node: string;
  onnxruntime: string;
  date: string;
}

/** Corpus, model and repeat settings of one bench run. */
export interface CorpusInfo {
  model: string;
  source: string;
  sentences: number;
  repeated: boolean;
  meanChars: number;
  schema: string[];
  repeats: number;
  /** Texts per extract() call, the task size of the extract command. */
  groupSize: number;
}

/** In-process timings of SpanExtractor.extract on one thread, in milliseconds. */
export interface BareResult {
  runMs: Summary;
  extractMs: Summary;
  batches: number;
  rows: number;
  /** Rows × padded length summed over all runs. */
  positions: number;
  /** Text tokens summed over all rows. */
  textTokens: number;
}

/** In-process timings of the shared-text graph over the same texts and labels. */
export interface SharedResult {
  runMs: Summary;
  extractMs: Summary;
  batches: number;
  /** Text rows, each decoded once per label. */
  rows: number;
  /** Text rows × padded text length summed over all runs. */
  positions: number;
}

/** Wall times of the queue path, in milliseconds. */
export interface QueueResult {
  enqueueMs: Summary;
  workMs: Summary;
  exportMs: Summary;
  totalMs: Summary;
  /** The same run with the worker started while enqueue runs. */
  overlap: {
    queuedMs: Summary;
    exportMs: Summary;
    totalMs: Summary;
  };
}

/**
 * Phases of `extract --threads N` in milliseconds, from its info log lines.
 * ExtractPhases in log-phases.ts defines each phase.
 */
export interface ExtractPhasesResult {
  startupMs: Summary;
  loadMs: Summary;
  extractionMs: Summary;
  exitMs: Summary;
}

/**
 * Phases of the queue path's `work --threads 2 --exit-when-drained` in
 * milliseconds, from its info log lines. WorkPhases in log-phases.ts defines
 * each phase.
 */
export interface WorkPhasesResult {
  startupMs: Summary;
  loadMs: Summary;
  connectMs: Summary;
  jobsMs: Summary;
  stopMs: Summary;
}

/**
 * Two bare model scripts started at the same moment, each on half of the
 * sentences, in milliseconds.
 */
export interface BareScriptPairResult {
  /** From spawning the first until the last exited. */
  wallMs: Summary;
  /** The longer of the two extract() loop times. */
  loopMs: Summary;
}

/** One worker count of the scale-out rows, with wall times in milliseconds. */
export interface ScaleOutRow {
  /** `work --threads 1 --exit-when-drained` processes started together. */
  workers: number;
  enqueueMs: Summary;
  /** From starting the first worker until the last one exited. */
  workMs: Summary;
  exportMs: Summary;
  /** Workers that wrote results. Fewer than `workers` means some found no job. */
  busyWorkers: Summary;
  /** Sentences ÷ median work time. */
  sentencesPerSecond: number;
}

/** Throughput of worker processes draining the same enqueued corpus. */
export interface ScaleOutResult {
  rows: ScaleOutRow[];
  /**
   * Outputs that every export matched byte for byte, in every repeat. The
   * bench fails when one differs.
   */
  identicalTo: string[];
}

/** Load cost of one pool thread; bytes and milliseconds. */
export interface LoadResult {
  loadMs: Summary;
  rssBefore: Summary;
  rssLoaded: Summary;
  maxRss: Summary;
  coldExtractMs: Summary;
  /** Sentences the probe extracted from before reading peak RSS. */
  probeSentences: number;
}

/** Load cost of an extra model folder (FP32 or teacher), from the probe. */
export interface ExtraLoadResult {
  loadMs: Summary;
  /** RSS after the load minus RSS before it: one more thread's cost. */
  rssGrowth: Summary;
  maxRss: Summary;
}

/** Model FLOPs against the measured single-thread GEMM speed. */
export interface FlopsResult {
  /** From model.json: FLOPs per text token for one label. */
  perToken: number | Skipped;
  /** bench/matmul.onnx at size³ on one thread, measured once per repeat. */
  peak: { size: number; gflops: Summary; ms: Summary };
  /** perToken × text tokens over all rows ÷ bare model time. */
  achievedGflops?: number;
  fractionOfPeak?: number;
}

/** Every number of one bench run; `--json` prints this object. */
export interface BenchResults {
  machine: MachineInfo;
  corpus: CorpusInfo;
  bare: BareResult;
  /** The shared-text graph of the same folder; the pool threads load it. */
  shared: SharedResult | Skipped;
  /**
   * bench/load-probe.js over every sentence, spawn to exit: Node.js start,
   * model load and the extract() loop, one thread.
   */
  bareScript: Summary;
  /** The extract() loop inside the bareScript run, after the model load. */
  bareScriptLoop: Summary;
  bareScriptPair: BareScriptPairResult;
  extract1: Summary;
  extract2: Summary;
  extract1Phases: ExtractPhasesResult;
  extract2Phases: ExtractPhasesResult;
  queue: QueueResult | Skipped;
  /** Phases of the `work` command inside `queue`. */
  queueWork: WorkPhasesResult | Skipped;
  scaleOut: ScaleOutResult | Skipped;
  /** Bare model time of the FP32 folder, in milliseconds. */
  fp32: Summary | Skipped;
  /** Bare model time of the teacher folder, in milliseconds. */
  teacher: Summary | Skipped;
  torch: TorchResult | Skipped;
  load: LoadResult;
  fp32Load: ExtraLoadResult | Skipped;
  teacherLoad: ExtraLoadResult | Skipped;
  flops: FlopsResult;
  ratios: Ratios;
}

/** Ratios of medians; undefined where a side was not measured. */
export interface Ratios {
  /**
   * extract --threads 1 wall time ÷ bare model time of the graph the pool
   * threads load: the shared-text graph when the folder has one.
   */
  pipelineOverBare: number;
  /** extract --threads 1 wall time ÷ bare script wall time. */
  pipelineOverBareScript: number;
  /** Packed bare time ÷ shared-text bare time, same texts and labels. */
  sharedSpeedup?: number;
  /** extract --threads 1 wall time ÷ extract --threads 2 wall time. */
  threads2Speedup: number;
  /**
   * extract --threads 1 extraction phase ÷ extract --threads 2 extraction
   * phase.
   */
  extractionPhaseSpeedup: number;
  /**
   * extract --threads 1 extraction phase ÷ bare model time of the graph the
   * pool threads load.
   */
  extractionPhaseOverBare: number;
  /**
   * Bare model script wall time ÷ wall time of two such scripts at once on
   * half the sentences each: what two cores give a program with the same
   * start-up.
   */
  bareScriptPairSpeedup: number;
  /** Bare model script loop time ÷ the longer loop of the two at once. */
  bareScriptLoopPairSpeedup: number;
  /** Queue throughput ÷ extract --threads 2 throughput. */
  queueOverExtract2?: number;
  /**
   * The same with the worker started while enqueue runs, as a batch job
   * starts them.
   */
  overlapOverExtract2?: number;
  /**
   * extract --threads 2 extraction phase ÷ the jobs phase of the queue's
   * work command: the ratio once start-up is paid, as on a long run.
   */
  queueJobsOverExtractionPhase?: number;
  /**
   * Throughput of each larger worker count ÷ throughput of the smallest,
   * from median work times.
   */
  scaleOutSpeedup?: { workers: number; baseline: number; value: number }[];
  /** FP32 bare time ÷ INT8 bare time: how much faster INT8 runs. */
  int8Speedup?: number;
  /** Teacher bare time ÷ student bare time. */
  studentSpeedup?: number;
  /** PyTorch eager time ÷ ONNX Runtime bare time on the same batches. */
  onnxOverTorchSpeedup?: number;
  /** Sentences per second per busy core. */
  perCore: {
    bare: number;
    shared?: number;
    extract1: number;
    extract2: number;
    queue?: number;
  };
  /** Bare model milliseconds per sentence, as measured. */
  bareMsPerSentence: number;
  /** Shared-text bare model milliseconds per sentence, as measured. */
  sharedMsPerSentence?: number;
  /** The same scaled linearly to 50 characters: an estimate. */
  bareMsPer50Chars: number;
  /** extract --threads 1 milliseconds per sentence, as measured. */
  extract1MsPerSentence: number;
}

/** Formats a worker count as "1 worker" or "N workers". */
export function workerCount(workers: number): string {
  return `${workers} worker${workers === 1 ? '' : 's'}`;
}

/** Computes the ratios from the medians of everything else. */
export function computeRatios(r: Omit<BenchResults, 'ratios'>): Ratios {
  const n = r.corpus.sentences;
  const bareMs = r.bare.runMs.median;
  const sharedMs =
    typeof r.shared === 'string' ? undefined : r.shared.runMs.median;
  const t1 = r.extract1.median;
  const t2 = r.extract2.median;
  const phase1 = r.extract1Phases.extractionMs.median;
  const phase2 = r.extract2Phases.extractionMs.median;
  const queueMs =
    typeof r.queue === 'string' ? undefined : r.queue.totalMs.median;
  const perSecond = (ms: number, cores: number) => n / (ms / 1000) / cores;
  const torchMs =
    typeof r.torch === 'string' ? undefined : r.torch.median * 1000;

  return {
    pipelineOverBare: t1 / (sharedMs ?? bareMs),
    pipelineOverBareScript: t1 / r.bareScript.median,
    sharedSpeedup: sharedMs === undefined ? undefined : bareMs / sharedMs,
    threads2Speedup: t1 / t2,
    extractionPhaseSpeedup: phase1 / phase2,
    extractionPhaseOverBare: phase1 / (sharedMs ?? bareMs),
    bareScriptPairSpeedup: r.bareScript.median / r.bareScriptPair.wallMs.median,
    bareScriptLoopPairSpeedup:
      r.bareScriptLoop.median / r.bareScriptPair.loopMs.median,
    queueOverExtract2: queueMs === undefined ? undefined : t2 / queueMs,
    queueJobsOverExtractionPhase:
      typeof r.queueWork === 'string'
        ? undefined
        : phase2 / r.queueWork.jobsMs.median,
    overlapOverExtract2:
      typeof r.queue === 'string'
        ? undefined
        : t2 / r.queue.overlap.totalMs.median,
    scaleOutSpeedup: scaleOutSpeedup(r.scaleOut),
    int8Speedup:
      typeof r.fp32 === 'string' ? undefined : r.fp32.median / bareMs,
    studentSpeedup:
      typeof r.teacher === 'string' ? undefined : r.teacher.median / bareMs,
    onnxOverTorchSpeedup: torchMs === undefined ? undefined : torchMs / bareMs,
    perCore: {
      bare: perSecond(bareMs, 1),
      shared: sharedMs === undefined ? undefined : perSecond(sharedMs, 1),
      extract1: perSecond(t1, 1),
      extract2: perSecond(t2, 2),
      queue: queueMs === undefined ? undefined : perSecond(queueMs, 2),
    },
    bareMsPerSentence: bareMs / n,
    sharedMsPerSentence: sharedMs === undefined ? undefined : sharedMs / n,
    bareMsPer50Chars: (bareMs / n) * (50 / r.corpus.meanChars),
    extract1MsPerSentence: t1 / n,
  };
}

function scaleOutSpeedup(
  scaleOut: ScaleOutResult | Skipped,
): Ratios['scaleOutSpeedup'] {
  if (typeof scaleOut === 'string') return undefined;
  const [base, ...larger] = scaleOut.rows;
  return larger.map((row) => ({
    workers: row.workers,
    baseline: base.workers,
    value: row.sentencesPerSecond / base.sentencesPerSecond,
  }));
}
