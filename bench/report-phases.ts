/**
 * Report rows that split command wall times into phases, and the rows of
 * two bare model scripts run at once.
 */
import {
  DRAIN_NOTE,
  timed,
  times,
  type RatioRow,
  type Row,
} from './report-cells.js';
import type { BenchResults, ExtractPhasesResult } from './results.js';

/** Builds the rows of the bare model script's loop and of two at once. */
export function bareScriptRows(r: BenchResults): Row[] {
  const pair = r.bareScriptPair;
  return [
    timed(
      'bare model script: extract() loop, 1 process',
      r.bareScriptLoop,
      'part of the row above, after the model load',
    ),
    timed(
      'bare model script, 2 processes at once (wall)',
      pair.wallMs,
      'half the sentences each; spawn of the first to exit of the last',
    ),
    timed(
      'bare model script: slower extract() loop of the 2',
      pair.loopMs,
      'half the sentences each',
    ),
  ];
}

/**
 * Builds the phase rows of `extract --threads N`, which add up to its wall
 * time.
 */
export function extractPhaseRows(
  threads: number,
  phases: ExtractPhasesResult,
): Row[] {
  const name = `extract --threads ${threads}:`;
  return [
    timed(
      `${name} start-up before the engine`,
      phases.startupMs,
      'spawn to engine start: Node.js, CLI modules, settings',
    ),
    timed(
      `${name} engine load`,
      phases.loadMs,
      'loadMs: pool start, model check and load in every thread',
    ),
    timed(
      `${name} extraction phase`,
      phases.extractionMs,
      'seconds of "extract finished": read, chunk, extract, write',
    ),
    timed(
      `${name} after extraction to exit`,
      phases.exitMs,
      'rest of the wall time: pool close and exit',
    ),
  ];
}

/**
 * Builds the phase rows of the queue path's `work`, which add up to its wall
 * time. Without Redis the queue row already gives the reason, so it builds
 * none.
 */
export function queueWorkRows(r: BenchResults): Row[] {
  const w = r.queueWork;
  if (typeof w === 'string') return [];
  return [
    timed(
      'queue: work: start-up before the engine',
      w.startupMs,
      'spawn to engine start',
    ),
    timed(
      'queue: work: engine load',
      w.loadMs,
      'loadMs; can include BullMQ load that outlasts the model load',
    ),
    timed(
      'queue: work: engine started to worker started',
      w.connectMs,
      'rest of BullMQ load if any; Redis client, queue, worker',
    ),
    timed(
      'queue: work: jobs and drain wait',
      w.jobsMs,
      `worker started to drained "worker stopping", ${DRAIN_NOTE}`,
    ),
    timed(
      'queue: work: stop and exit',
      w.stopMs,
      'rest of the wall time: worker, pool and Redis close, exit',
    ),
  ];
}

/** Builds the ratios of the extraction phase and of the bare model scripts. */
export function phaseRatioRows(r: BenchResults): RatioRow[] {
  const q = r.ratios;
  const bare =
    typeof r.shared === 'string'
      ? 'phase ÷ sum of run()'
      : 'phase ÷ sum of run() of the shared-text graph';
  return [
    [
      'extraction phase speed-up, 2 threads ÷ 1',
      times(q.extractionPhaseSpeedup),
      '--threads 1 phase ÷ --threads 2 phase',
    ],
    [
      'bare model script, 1 process ÷ 2 processes at once',
      times(q.bareScriptPairSpeedup),
      'wall times: what 2 cores give with start-up in each process',
    ],
    [
      'bare model script loop, 1 process ÷ slower of 2 at once',
      times(q.bareScriptLoopPairSpeedup),
      'loop times: what 2 cores give the model loop alone',
    ],
    [
      'extract --threads 1 extraction phase ÷ bare model time',
      times(q.extractionPhaseOverBare),
      bare,
    ],
  ];
}
