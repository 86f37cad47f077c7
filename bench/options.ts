import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** Repository root; the compiled bench runs from dist/bench. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

// Each worker process loads its own model, so the cap keeps a typo such as
// 1000 from starting that many at once.
const MAX_WORKERS = 64;

/** Settings of one benchmark run, from the command line. */
export interface BenchOptions {
  /** Sentences in the corpus. @defaultValue 2500 */
  sentences: number;
  /** Times each measurement runs; the table shows the median. @defaultValue 3 */
  repeats: number;
  /** Model folder under test. @defaultValue models/tiny */
  model: string;
  /** Labels to extract. @defaultValue 人物,地点,机构 */
  schema: string[];
  /** Model folder exported without --int8, for the INT8 vs FP32 row. */
  fp32?: string;
  /** Teacher model folder, for the student vs teacher row. */
  teacher?: string;
  /** Training run folder (best.pt, vocab.txt) for the PyTorch eager row. */
  torchRun?: string;
  /** Python interpreter with torch. @defaultValue /usr/bin/python3 */
  python: string;
  /** Redis URL; only 127.0.0.1 is accepted. @defaultValue redis://127.0.0.1:6379 */
  redisUrl: string;
  /** Limit on each child process, in seconds. @defaultValue 900 */
  timeoutSeconds: number;
  /**
   * Numbers of `work --threads 1` processes to start together for the
   * scale-out rows, ascending without duplicates. @defaultValue [1, 2]
   */
  workers: number[];
  /** Print one JSON object instead of the table. */
  json: boolean;
}

export const HELP = `Usage: node dist/bench/run.js [options]

Measures the bare model (the packed graph and, when model.json names one,
the shared-text graph), the extract command, the queue path, model load
cost and, when given the folders, FP32, teacher and PyTorch eager speed.

  --sentences N     sentences in the corpus (default 2500)
  --repeats N       runs of each measurement; the table shows medians (default 3)
  --model DIR       model folder under test (default models/tiny)
  --schema LIST     labels, comma-separated (default 人物,地点,机构)
  --fp32 DIR        model folder exported without --int8
  --teacher DIR     teacher model folder
  --torch-run DIR   training run folder with best.pt and vocab.txt
  --python PATH     Python with torch 1.13+ (default /usr/bin/python3)
  --timeout S       seconds each child process may run before it is killed (default 900)
  --workers LIST    worker processes draining one run together, comma-separated (default 1,2)
  --json            print all numbers as one JSON object instead of the table
  -h, --help        show this help

Redis comes from REDIS_URL (default redis://127.0.0.1:6379) and must be on 127.0.0.1.
`;

/**
 * Parses and validates the bench's command line.
 *
 * @returns undefined when --help was given
 * @throws RangeError or TypeError naming the option and the value received
 */
export function parseBenchOptions(argv: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      sentences: { type: 'string', default: '2500' },
      repeats: { type: 'string', default: '3' },
      model: { type: 'string' },
      schema: { type: 'string', default: '人物,地点,机构' },
      fp32: { type: 'string' },
      teacher: { type: 'string' },
      'torch-run': { type: 'string' },
      python: { type: 'string', default: '/usr/bin/python3' },
      timeout: { type: 'string', default: '900' },
      workers: { type: 'string', default: '1,2' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;

  const schema = values.schema
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean);
  if (schema.length === 0) {
    throw new RangeError(
      `--schema: expected at least one label, got "${values.schema}"`,
    );
  }
  return {
    sentences: integer('--sentences', values.sentences, 1, 1_000_000),
    repeats: integer('--repeats', values.repeats, 1, 100),
    model: folder('--model', values.model) ?? resolve(ROOT, 'models/tiny'),
    schema,
    fp32: folder('--fp32', values.fp32),
    teacher: folder('--teacher', values.teacher),
    torchRun: folder('--torch-run', values['torch-run']),
    python: values.python,
    redisUrl: localRedisUrl(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'),
    timeoutSeconds: integer('--timeout', values.timeout, 1, 86_400),
    workers: workerCounts(values.workers),
    json: values.json,
  };
}

function integer(name: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value)) {
    throw new TypeError(`${name}: expected an integer, got "${raw}"`);
  }
  if (value < min || value > max) {
    throw new RangeError(
      `${name}: expected an integer from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}

/**
 * Parses --workers into ascending counts. The smallest is the baseline of
 * the scale-out ratios and of the export comparison.
 */
function workerCounts(raw: string): number[] {
  const counts = raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => integer('--workers', part, 1, MAX_WORKERS));
  if (counts.length === 0) {
    throw new RangeError(
      `--workers: expected at least one count, got "${raw}"`,
    );
  }
  const sorted = [...counts].sort((a, b) => a - b);
  if (new Set(sorted).size !== sorted.length) {
    throw new RangeError(`--workers: expected distinct counts, got "${raw}"`);
  }
  return sorted;
}

function folder(name: string, raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const path = resolve(raw);
  if (!existsSync(path))
    throw new RangeError(`${name}: folder not found: ${path}`);
  return path;
}

/** Returns url when its host is 127.0.0.1, so the bench never touches a shared Redis. */
function localRedisUrl(url: string): string {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    // The URL may hold a password, so the message leaves it out.
    throw new TypeError(
      'REDIS_URL: expected a redis:// URL; the value is not a valid URL',
    );
  }
  if (host !== '127.0.0.1') {
    throw new RangeError(
      `REDIS_URL: the bench only uses a Redis on 127.0.0.1, got host "${host}"; ` +
        'unset REDIS_URL or point it at 127.0.0.1',
    );
  }
  return url;
}
