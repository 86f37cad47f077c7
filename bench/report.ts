import {
  bytes,
  DRAIN_NOTE,
  gflops,
  mib,
  ms,
  percent,
  range,
  skipped,
  table,
  timed,
  times,
  type RatioRow,
  type Row,
} from './report-cells.js';
import {
  bareScriptRows,
  extractPhaseRows,
  phaseRatioRows,
  queueWorkRows,
} from './report-phases.js';
import { workerCount, type BenchResults, type Skipped } from './results.js';
import type { Summary } from './stats.js';

/** Renders the results as two Markdown tables, measurements then ratios. */
export function formatReport(r: BenchResults): string {
  const c = r.corpus;
  const m = r.machine;
  const head = [
    `uie-batch bench, ${m.date}: ${c.sentences} sentences (mean ${c.meanChars.toFixed(1)} chars` +
      `${c.repeated ? ', repeated' : ''}) from ${c.source}`,
    `model ${c.model}, schema ${c.schema.join(',')}, medians of ${c.repeats} repeat(s), ` +
      `${c.groupSize} texts per extract() call`,
    `machine: ${m.cpus} × ${m.cpuModel}, ${mib(m.totalMemory)} RAM, load average ` +
      `${m.loadAverage.toFixed(2)} at start; Node ${m.node}, onnxruntime-node ${m.onnxruntime}`,
  ];
  return [
    ...head,
    '',
    table(['measurement', 'median', 'min – max', 'note'], measurementRows(r)),
    '',
    table(['ratio', 'value', 'note'], ratioRows(r)),
  ].join('\n');
}

function measurementRows(r: BenchResults): Row[] {
  const b = r.bare;
  const overhead = b.extractMs.median - b.runMs.median;
  const rows: Row[] = [
    timed(
      'bare model: sum of run(), 1 thread',
      b.runMs,
      `${b.batches} runs, ${b.rows} rows`,
    ),
    timed(
      'in-process extract(), 1 thread',
      b.extractMs,
      `packing + decoding ${ms(overhead)}`,
    ),
    ...sharedRows(r),
    timed(
      'bare model script, 1 thread (wall)',
      r.bareScript,
      'spawn to exit: Node.js start, model load, the same extract() loop',
    ),
    ...bareScriptRows(r),
    timed('extract --threads 1 (wall)', r.extract1, extractNote(r)),
    ...extractPhaseRows(1, r.extract1Phases),
    timed('extract --threads 2 (wall)', r.extract2, extractNote(r)),
    ...extractPhaseRows(2, r.extract2Phases),
  ];
  if (typeof r.queue === 'string') {
    rows.push(skipped('queue: enqueue + work + export', r.queue));
  } else {
    rows.push(
      timed('queue: enqueue', r.queue.enqueueMs, ''),
      timed(
        'queue: work --threads 2 --exit-when-drained',
        r.queue.workMs,
        DRAIN_NOTE,
      ),
      ...queueWorkRows(r),
      timed('queue: export', r.queue.exportMs, ''),
      timed('queue: total', r.queue.totalMs, 'sum of the three phases'),
      timed(
        'queue, work started with enqueue: both done',
        r.queue.overlap.queuedMs,
        'spawn of enqueue to exit of the later of the two',
      ),
      timed(
        'queue, work started with enqueue: export',
        r.queue.overlap.exportMs,
        '',
      ),
      timed(
        'queue, work started with enqueue: total',
        r.queue.overlap.totalMs,
        'both done + export',
      ),
    );
  }
  rows.push(
    ...scaleOutRows(r),
    optional('FP32 bare model', r.fp32),
    optional('teacher bare model', r.teacher),
    torchRow(r),
    ...loadRows(r),
    ...extraLoadRows('FP32', r.fp32Load),
    ...extraLoadRows('teacher', r.teacherLoad),
    ...flopsRows(r),
  );
  return rows;
}

function sharedRows(r: BenchResults): Row[] {
  const name = 'shared-text bare model: sum of run(), 1 thread';
  if (typeof r.shared === 'string') return [skipped(name, r.shared)];
  const s = r.shared;
  const overhead = s.extractMs.median - s.runMs.median;
  return [
    timed(
      name,
      s.runMs,
      `${s.batches} runs, ${s.rows} text rows, same pairs as above`,
    ),
    timed(
      'shared-text in-process extract(), 1 thread',
      s.extractMs,
      `packing + decoding ${ms(overhead)}`,
    ),
  ];
}

/** Builds one row per worker count, with its throughput and export check. */
function scaleOutRows(r: BenchResults): Row[] {
  const s = r.scaleOut;
  if (typeof s === 'string')
    return [skipped('scale-out: N × work --threads 1', s)];
  const base = s.rows[0].workers;
  return s.rows.map((row) => {
    const matched =
      row.workers === base
        ? 'export = extract t1'
        : `export = ${workerCount(base)}'s and extract t1`;
    const rate = `${row.sentencesPerSecond.toFixed(1)} sentences/s`;
    // The minimum over repeats, because a repeat with an idle worker does not
    // measure P workers at work.
    const busy = `${row.busyWorkers.min} of ${row.workers} wrote results`;
    return timed(
      `scale-out: ${row.workers} × work --threads 1 (start to last exit)`,
      row.workMs,
      `${rate}, ${busy}, ${matched}, ${DRAIN_NOTE}`,
    );
  });
}

/** Names the graph the pool threads of the extract command load. */
function extractNote(r: BenchResults): string {
  const graph = typeof r.shared === 'string' ? 'packed' : 'shared-text';
  return `spawn to exit, ${graph} graph`;
}

/** Load time and memory of the FP32 or teacher folder, when given. */
function extraLoadRows(name: string, load: BenchResults['fp32Load']): Row[] {
  if (typeof load === 'string') return [skipped(`${name} model load`, load)];
  return [
    timed(`${name} model + tokenizer load`, load.loadMs, 'fresh process'),
    bytes(
      `${name} RSS growth from the load`,
      load.rssGrowth,
      'cost of one more thread',
    ),
    bytes(
      `${name} peak RSS after the probe sentences`,
      load.maxRss,
      'VmHWM of the probe process',
    ),
  ];
}

function loadRows(r: BenchResults): Row[] {
  const l = r.load;
  const grown = l.rssLoaded.median - l.rssBefore.median;
  return [
    timed('model + tokenizer load, per thread', l.loadMs, 'fresh process'),
    bytes('RSS before load', l.rssBefore, 'Node.js + onnxruntime binding'),
    bytes('RSS after load', l.rssLoaded, `+${mib(grown)} for the model`),
    bytes(
      `peak RSS after ${l.probeSentences} sentences`,
      l.maxRss,
      'VmHWM of the probe process',
    ),
    timed(
      'cold extract of a 1-sentence CSV',
      l.coldExtractMs,
      'spawn to exit, --threads 1',
    ),
  ];
}

function flopsRows(r: BenchResults): Row[] {
  const f = r.flops;
  const g = f.peak.gflops;
  const peakNote = `${f.peak.size}³ MatMul, 1 thread, ${ms(f.peak.ms.median)}`;
  const rows: Row[] = [
    [
      'matmul peak (float32)',
      gflops(g.median),
      `${gflops(g.min)} – ${gflops(g.max)}`,
      peakNote,
    ],
  ];
  if (typeof f.perToken === 'string') {
    rows.push(skipped('model FLOPs per text token, 1 label', f.perToken));
    return rows;
  }
  const note = `${r.bare.textTokens} text tokens over all rows`;
  rows.push(
    [
      'model FLOPs per text token, 1 label',
      `${(f.perToken / 1e6).toFixed(2)} MFLOP`,
      '',
      '',
    ],
    ['model achieved (bare loop)', gflops(f.achievedGflops!), '', note],
    [
      'model fraction of matmul peak',
      percent(f.fractionOfPeak!),
      '',
      textShare(r),
    ],
  );
  return rows;
}

function ratioRows(r: BenchResults): RatioRow[] {
  const q = r.ratios;
  const c = r.corpus;
  const labels = `${c.schema.length} labels`;
  const perCore = q.perCore;
  const queuePerCore =
    perCore.queue === undefined ? '' : `, queue ${perCore.queue.toFixed(1)}`;
  const sharedPerCore =
    perCore.shared === undefined ? '' : `, shared ${perCore.shared.toFixed(1)}`;
  const sharedMs =
    q.sharedMsPerSentence === undefined
      ? ''
      : `, shared ${q.sharedMsPerSentence.toFixed(3)}`;
  return [
    [
      'extract --threads 1 ÷ bare model time',
      times(q.pipelineOverBare),
      typeof r.shared === 'string'
        ? 'wall ÷ sum of run()'
        : 'wall ÷ sum of run() of the shared-text graph',
    ],
    [
      'extract --threads 1 ÷ bare model script',
      times(q.pipelineOverBareScript),
      'both spawn to exit, so process start and model load are on both sides',
    ],
    ratio('shared-text speed-up over packed (bare)', q.sharedSpeedup, r.shared),
    [
      'extract --threads 2 speed-up over --threads 1',
      times(q.threads2Speedup),
      'wall times',
    ],
    ...phaseRatioRows(r),
    ratio(
      'queue ÷ extract --threads 2 throughput',
      q.queueOverExtract2,
      r.queue,
    ),
    ratio(
      'queue, work started with enqueue, ÷ extract --threads 2',
      q.overlapOverExtract2,
      r.queue,
    ),
    ratio(
      'queue ÷ extract --threads 2 throughput after start-up (phases)',
      q.queueJobsOverExtractionPhase,
      r.queueWork,
    ),
    ...scaleOutRatioRows(r),
    ratio('INT8 speed-up over FP32 (bare)', q.int8Speedup, r.fp32),
    ratio('student speed-up over teacher (bare)', q.studentSpeedup, r.teacher),
    ratio(
      'ONNX Runtime speed-up over PyTorch eager',
      q.onnxOverTorchSpeedup,
      r.torch,
    ),
    [
      'sentences/s per core',
      `bare ${perCore.bare.toFixed(1)}${sharedPerCore}, extract t1 ${perCore.extract1.toFixed(1)}, ` +
        `t2 ${perCore.extract2.toFixed(1)}${queuePerCore}`,
      'threads 2 and queue divided by 2 cores',
    ],
    [
      `ms per sentence (mean ${c.meanChars.toFixed(1)} chars, ${labels})`,
      `bare ${q.bareMsPerSentence.toFixed(3)}${sharedMs}, extract t1 ${q.extract1MsPerSentence.toFixed(3)}`,
      '',
    ],
    [
      `ms per 50-char sentence, ${labels}`,
      `bare ${q.bareMsPer50Chars.toFixed(3)}`,
      'estimate: scaled linearly from the mean length',
    ],
  ];
}

function scaleOutRatioRows(r: BenchResults): RatioRow[] {
  const speedups = r.ratios.scaleOutSpeedup;
  const name = 'scale-out throughput';
  if (speedups === undefined) return [ratio(name, undefined, r.scaleOut)];
  if (speedups.length === 0)
    return [[name, 'not measured (--workers has one count)', '']];
  return speedups.map((s) => [
    `scale-out throughput, ${workerCount(s.workers)} ÷ ${workerCount(s.baseline)}`,
    times(s.value),
    'median work times',
  ]);
}

/** Share of computed positions that are text, not prompt, markers or padding. */
function textShare(r: BenchResults): string {
  return `text is ${percent(r.bare.textTokens / r.bare.positions)} of computed positions`;
}

function torchRow(r: BenchResults): Row {
  if (typeof r.torch === 'string')
    return skipped('PyTorch eager, 1 thread', r.torch);
  const seconds = r.torch.seconds.map((s) => s * 1000);
  const note = `torch ${r.torch.torch}, same ${r.torch.batches} batches`;
  return [
    'PyTorch eager, 1 thread',
    ms(r.torch.median * 1000),
    range(seconds),
    note,
  ];
}

function optional(name: string, s: Summary | Skipped): Row {
  return typeof s === 'string'
    ? skipped(name, s)
    : timed(name, s, 'sum of run(), same pairs');
}

function ratio(
  name: string,
  value: number | undefined,
  source: object | Skipped,
): RatioRow {
  if (value === undefined)
    return [name, typeof source === 'string' ? source : 'not measured', ''];
  return [name, times(value), 'medians'];
}
