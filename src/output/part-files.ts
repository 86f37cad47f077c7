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
 * Appends chunk results to this worker's own part file. Each call is one
 * write, so a process killed mid-job leaves at most one cut last line, which
 * readers skip. The job then runs again and writes the lines anew.
 */
export class PartWriter {
  private readonly ready = new Map<string, Promise<string>>();

  constructor(
    private readonly outputDir: string,
    private readonly workerName: string,
  ) {}

  async append(run: string, records: PartRecord[]): Promise<void> {
    if (records.length === 0) return;
    let path = this.ready.get(run);
    if (!path) {
      const dir = partsDir(this.outputDir, run);
      path = mkdir(dir, { recursive: true }).then(() =>
        join(dir, `${this.workerName}.jsonl`),
      );
      this.ready.set(run, path);
    }
    await appendFile(
      await path,
      records.map((r) => JSON.stringify(r)).join('\n') + '\n',
    );
  }
}

/**
 * Reads every part file of a run. Lines that do not parse, such as one cut
 * by a killed worker, are counted in `skipped` and otherwise ignored.
 */
export async function* readParts(
  outputDir: string,
  run: string,
  stats: { skipped: number } = { skipped: 0 },
): AsyncGenerator<PartRecord> {
  const dir = partsDir(outputDir, run);
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith('.jsonl')).sort();
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
