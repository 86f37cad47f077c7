import { createReadStream } from 'node:fs';
import { appendFile, mkdir, readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

import type { Logger } from 'pino';

import type { ChunkRange } from '../chunking/chunker.js';
import { envName } from '../config/config.js';
import type { Entity } from '../engine/entity.js';

/** One line of a part file: a chunk's entities or its final error. */
export type PartRecord =
  | { id: string; k: number; range: ChunkRange; entities: Entity[] }
  | { id: string; k: number; error: string };

/** Folder of a run's part files. */
export function partsDir(outputDir: string, run: string): string {
  return join(outputDir, run, 'parts');
}

/**
 * Returns the name of a worker's part file for one generation of a run:
 * `<worker>.<generation>.jsonl`, or `<worker>.jsonl` for a run recorded
 * before runs had generations.
 */
export function partFileName(worker: string, generation?: number): string {
  return generation === undefined
    ? `${worker}.jsonl`
    : `${worker}.${generation}.jsonl`;
}

// Worker names end in `-<base-36 time>`, so a part file written without a
// generation never ends in `.<digits>.jsonl`.
const GENERATION_PART = /\.(\d+)\.jsonl$/;

/** Returns whether a part file name belongs to a generation of the run. */
function isPartOf(name: string, generation: number | undefined): boolean {
  if (!name.endsWith('.jsonl')) return false;
  const match = GENERATION_PART.exec(name);
  if (generation === undefined) return match === null;
  return match !== null && Number(match[1]) === generation;
}

/**
 * A part file that a worker could not create or append to, such as one
 * under a results path that is a file or a folder without write permission.
 * The job that wrote it fails, so it is retried, and after its last attempt
 * its chunks count as failed.
 */
export class PartFileError extends Error {
  readonly code = 'E_PART_FILE';

  constructor(
    /** Absolute path of the part file. */
    readonly path: string,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      `cannot write part file ${path}: ${reason}. Check that ${dirname(path)} is a folder this worker can write to ` +
        `and that no folder has the part file's name, or set outputDir (${envName('outputDir')}) to another folder`,
      { cause },
    );
    this.name = 'PartFileError';
  }
}

/**
 * Appends chunk results to this worker's own part file of a run's
 * generation. Appends to one file run one after another: Node.js splits a
 * write of over 512 KiB into several, and two jobs appending at once would
 * interleave their lines. A process killed mid-job leaves at most one cut
 * last line, which readers skip. The job then runs again and writes the
 * lines anew.
 */
export class PartWriter {
  private readonly ready = new Map<string, Promise<string>>();
  /** The last append queued on each part file. */
  private readonly tails = new Map<string, Promise<void>>();
  /** Part files whose last append failed, possibly after part of a line. */
  private readonly cut = new Set<string>();
  /** Part files whose write error was logged already. */
  private readonly reported = new Set<string>();

  /** @param log - receives each part file's first write error */
  constructor(
    private readonly outputDir: string,
    private readonly workerName: string,
    private readonly log: Logger,
  ) {}

  /**
   * @throws PartFileError when the folder or the file cannot be written;
   *   the error is logged the first time for each path
   */
  async append(
    run: string,
    generation: number | undefined,
    records: PartRecord[],
  ): Promise<void> {
    if (records.length === 0) return;
    const key = `${run}/${generation ?? ''}`;
    const dir = partsDir(this.outputDir, run);
    const path = join(dir, partFileName(this.workerName, generation));
    try {
      let ready = this.ready.get(key);
      if (!ready) {
        ready = mkdir(dir, { recursive: true }).then(() => path);
        this.ready.set(key, ready);
      }
      await ready;
      await this.appendInOrder(path, records);
    } catch (err) {
      // Forgotten so that the next job tries the folder again, which
      // succeeds once an operator has fixed it.
      this.ready.delete(key);
      throw this.report(new PartFileError(resolve(path), err));
    }
  }

  /** Appends records once every earlier append to path has settled. */
  private appendInOrder(path: string, records: PartRecord[]): Promise<void> {
    const text = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    const write = async () => {
      // A line end first, so that a line cut by the failed append does not
      // swallow the first record of this one.
      const prefix = this.cut.has(path) ? '\n' : '';
      try {
        await appendFile(path, prefix + text);
        this.cut.delete(path);
      } catch (err) {
        this.cut.add(path);
        throw err;
      }
    };
    const previous = this.tails.get(path) ?? Promise.resolve();
    // A tail never rejects, so each append waits for the one before it.
    const appended = previous.then(write);
    const tail = appended.catch(() => undefined);
    this.tails.set(path, tail);
    // Drops the entry once no later append has queued behind this one.
    void tail.then(() => {
      if (this.tails.get(path) === tail) this.tails.delete(path);
    });
    return appended;
  }

  private report(err: PartFileError): PartFileError {
    if (!this.reported.has(err.path)) {
      this.reported.add(err.path);
      this.log.error(
        { err, path: err.path },
        'cannot write part file; its jobs fail until the path is writable',
      );
    }
    return err;
  }
}

/**
 * Returns the sorted names of the part files of one generation of a run.
 * A parts folder that does not exist, or is a file, has none.
 *
 * @param generation - the run's generation, or undefined for a run recorded
 *   before runs had generations
 * @throws Error from readdir when the folder exists but cannot be read
 */
export async function listPartFiles(
  outputDir: string,
  run: string,
  generation: number | undefined,
): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(partsDir(outputDir, run));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
  return names.filter((name) => isPartOf(name, generation)).sort();
}

/**
 * Reads every part file of one generation of a run, so results left by a
 * forgotten run of the same name are not read. Lines that do not parse, such
 * as one cut by a killed worker, are counted in `stats` with where the
 * first were, and otherwise ignored.
 *
 * @param generation - the run's generation, or undefined for a run recorded
 *   before runs had generations
 */
export async function* readParts(
  outputDir: string,
  run: string,
  generation: number | undefined,
  stats: SkippedLines = { skipped: 0, first: [] },
): AsyncGenerator<PartRecord> {
  const dir = partsDir(outputDir, run);
  let files: string[];
  try {
    files = await listPartFiles(outputDir, run, generation);
  } catch {
    return;
  }
  for (const file of files) {
    const input = createReadStream(join(dir, file), {
      encoding: 'utf8',
      highWaterMark: 64 * 1024,
    });
    // Split by hand rather than with node:readline, whose event per line
    // made reading 2,500 part-file lines about 5 ms slower (median of 11
    // runs). The line ends are readline's, so a CR or CRLF written by
    // another tool still ends a line.
    const at = { file: join(dir, file), line: 0 };
    let rest = '';
    for await (const chunk of input as AsyncIterable<string>) {
      const lines = (rest + chunk).split(LINE_END);
      rest = lines.pop() ?? '';
      for (const line of lines) {
        at.line++;
        const record = parseLine(line, stats, at);
        if (record) yield record;
      }
    }
    at.line++;
    const record = parseLine(rest, stats, at);
    if (record) yield record;
  }
}

const LINE_END = /\r\n|\n|\r/;

/** Part-file lines that did not parse: how many, and where the first were. */
export interface SkippedLines {
  skipped: number;
  /** File and 1-based line of the first {@link FIRST_SKIPPED} of them. */
  first: { file: string; line: number }[];
}

const FIRST_SKIPPED = 5;

/**
 * Parses a part-file line. A line that does not parse is counted in
 * `skipped`.
 */
function parseLine(
  line: string,
  stats: SkippedLines,
  at: { file: string; line: number },
): PartRecord | undefined {
  if (!line) return undefined;
  try {
    return JSON.parse(line) as PartRecord;
  } catch {
    stats.skipped++;
    if (stats.first.length < FIRST_SKIPPED) stats.first.push({ ...at });
    return undefined;
  }
}
