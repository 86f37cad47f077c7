import { createReadStream } from 'node:fs';
import { appendFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import type { ChunkRange } from '../chunking/chunker.js';
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
 * Appends chunk results to this worker's own part file of a run's
 * generation. Each call is one write, so a process killed mid-job leaves at
 * most one cut last line, which readers skip. The job then runs again and
 * writes the lines anew.
 */
export class PartWriter {
  private readonly ready = new Map<string, Promise<string>>();

  constructor(
    private readonly outputDir: string,
    private readonly workerName: string,
  ) {}

  async append(
    run: string,
    generation: number | undefined,
    records: PartRecord[],
  ): Promise<void> {
    if (records.length === 0) return;
    const key = `${run}/${generation ?? ''}`;
    let path = this.ready.get(key);
    if (!path) {
      const dir = partsDir(this.outputDir, run);
      const name = partFileName(this.workerName, generation);
      path = mkdir(dir, { recursive: true }).then(() => join(dir, name));
      this.ready.set(key, path);
    }
    await appendFile(
      await path,
      records.map((r) => JSON.stringify(r)).join('\n') + '\n',
    );
  }
}

/**
 * Reads every part file of one generation of a run, so results left by a
 * forgotten run of the same name are not read. Lines that do not parse, such
 * as one cut by a killed worker, are counted in `skipped` and otherwise
 * ignored.
 *
 * @param generation - the run's generation, or undefined for a run recorded
 *   before runs had generations
 */
export async function* readParts(
  outputDir: string,
  run: string,
  generation: number | undefined,
  stats: { skipped: number } = { skipped: 0 },
): AsyncGenerator<PartRecord> {
  const dir = partsDir(outputDir, run);
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => isPartOf(f, generation)).sort();
  } catch {
    return;
  }
  for (const file of files) {
    const lines = createInterface({
      input: createReadStream(join(dir, file)),
      crlfDelay: Infinity,
    });
    for await (const line of lines) {
      if (!line) continue;
      try {
        yield JSON.parse(line) as PartRecord;
      } catch {
        stats.skipped++;
      }
    }
  }
}
