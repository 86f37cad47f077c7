import type { ChildResult } from './child-process.js';

/**
 * Phases of one `extract` run in milliseconds, from its info log lines.
 * They add up to the wall time from spawn to exit.
 */
export interface ExtractPhases {
  /**
   * Spawn until startEngine reads its clock: Node.js start, the CLI modules,
   * settings and the input and output checks.
   */
  startupMs: number;
  /**
   * `loadMs` of "engine started": pool start, model check and model load in
   * every thread.
   */
  loadMs: number;
  /**
   * `seconds` of "extract finished": opening the output, reading and
   * chunking the CSV, extraction, writing and committing the output.
   */
  extractionMs: number;
  /** The rest of the wall time: mostly closing the pool and the exit. */
  exitMs: number;
}

/**
 * Phases of one `work --exit-when-drained` run in milliseconds, from its
 * info log lines. They add up to the wall time from spawn to exit.
 */
export interface WorkPhases {
  /** Spawn until startEngine reads its clock. */
  startupMs: number;
  /**
   * `loadMs` of "engine started". The main thread loads the worker module,
   * BullMQ and ioredis meanwhile, and a synchronous part of that load delays
   * the log line, so this can include load time that outlasts the model's.
   */
  loadMs: number;
  /**
   * "engine started" to "worker started": the rest of the module load, if
   * any, and creating the Redis client, the queue and the BullMQ worker. The
   * connection may still be opening.
   */
  connectMs: number;
  /**
   * "worker started" to the drained worker's "worker stopping": the jobs
   * and the drain polls after the last one.
   */
  jobsMs: number;
  /** The rest of the wall time: closing the worker, pool and Redis, and exit. */
  stopMs: number;
}

/** One pino JSON line. `time` is the child's Date.now() at the log call. */
interface LogLine {
  time: number;
  msg: string;
  [field: string]: unknown;
}

// Each phase combines clock readings taken in 1 ms steps, so a phase a few
// ms below zero is rounding. A larger negative phase means the system clock
// was changed during the run.
const CLOCK_SLACK_MS = 3;

/**
 * Splits an `extract` child's wall time into phases. The start-up is
 * ("engine started" `time` − `loadMs`) − spawn time, which is when
 * startEngine read its clock, within 1 ms.
 *
 * @throws Error when a log line or field is missing, or the phases do not
 *   fit the wall time
 */
export function extractPhases(result: ChildResult): ExtractPhases {
  const lines = logLines(result.stderr);
  const engine = findLine(lines, 'engine started', 'extract');
  const finished = findLine(lines, 'extract finished', 'extract');
  const loadMs = numberField(engine, 'loadMs', 'extract');
  const extractionMs = numberField(finished, 'seconds', 'extract') * 1000;
  const startupMs = engine.time - loadMs - result.spawnedAt;
  const phases = {
    startupMs,
    loadMs,
    extractionMs,
    exitMs: result.wallMs - startupMs - loadMs - extractionMs,
  };
  return checkPhases(phases, 'extract');
}

/**
 * Splits a `work --exit-when-drained` child's wall time into phases, with
 * the start-up derived as for extract.
 *
 * @throws Error when a log line or field is missing, the worker stopped for
 *   another reason than a drained queue, or the phases do not fit the wall
 *   time
 */
export function workPhases(result: ChildResult): WorkPhases {
  const lines = logLines(result.stderr);
  const engine = findLine(lines, 'engine started', 'work');
  const worker = findLine(lines, 'worker started', 'work');
  const stopping = findLine(
    lines,
    'worker stopping; finishing active jobs',
    'work',
  );
  if (stopping.reason !== 'drained') {
    throw new Error(
      `work stopped with reason ${String(stopping.reason)}, expected drained`,
    );
  }
  const loadMs = numberField(engine, 'loadMs', 'work');
  const startupMs = engine.time - loadMs - result.spawnedAt;
  const phases = {
    startupMs,
    loadMs,
    connectMs: worker.time - engine.time,
    jobsMs: stopping.time - worker.time,
    stopMs: result.spawnedAt + result.wallMs - stopping.time,
  };
  return checkPhases(phases, 'work');
}

/** Parses the pino JSON lines of stderr and skips every other line. */
function logLines(stderr: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const text of stderr.split('\n')) {
    if (!text.startsWith('{')) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      continue;
    }
    const line = parsed as Partial<LogLine>;
    if (typeof line.time === 'number' && typeof line.msg === 'string')
      lines.push(line as LogLine);
  }
  return lines;
}

function findLine(lines: LogLine[], msg: string, command: string): LogLine {
  const line = lines.find((l) => l.msg === msg);
  if (!line) {
    throw new Error(
      `${command} logged no "${msg}" line at LOG_LEVEL=info; ` +
        'the bench reads its phases from that line',
    );
  }
  return line;
}

function numberField(line: LogLine, field: string, command: string): number {
  const value = line[field];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Error(
      `${command}: the "${line.msg}" log line has no numeric ${field}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function checkPhases<T extends object>(phases: T, command: string): T {
  const values = Object.entries(phases) as [string, number][];
  const bad = values.find(([, ms]) => !(ms >= -CLOCK_SLACK_MS));
  if (bad) {
    throw new Error(
      `${command}: phase ${bad[0]} is ${bad[1]} ms, so its log times do not fit ` +
        'its wall time; the system clock may have been changed during the run',
    );
  }
  return phases;
}
