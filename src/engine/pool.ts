import { fileURLToPath } from 'node:url';

import { Piscina } from 'piscina';

import type { Entity } from './entity.js';
import type { ExtractTask, ThreadSettings } from './extract-task.js';

/** A piscina pool whose threads each hold one resident model. */
export class ExtractionPool {
  private readonly pool: Piscina;

  constructor(
    readonly threads: number,
    settings: ThreadSettings,
  ) {
    this.pool = new Piscina({
      filename: fileURLToPath(new URL('./extract-task.js', import.meta.url)),
      minThreads: threads,
      maxThreads: threads,
      // Threads must stay alive because each one contains a loaded model.
      idleTimeout: Number.POSITIVE_INFINITY,
      workerData: settings,
      // A thread over its heap limit dies alone: piscina fails its task and
      // starts a new thread, and the queue retries the job.
      ...(settings.memoryMb > 0 && {
        resourceLimits: { maxOldGenerationSizeMb: settings.memoryMb },
      }),
    });
  }

  /** Loads the model on every thread, so a broken model fails at start. */
  async warmUp(): Promise<void> {
    await Promise.all(
      Array.from({ length: this.threads }, () =>
        this.run({ texts: [], schema: [] }),
      ),
    );
  }

  run(task: ExtractTask): Promise<Entity[][]> {
    return this.pool.run(task) as Promise<Entity[][]>;
  }

  /** Tasks waiting for a free thread. */
  get queueSize(): number {
    return this.pool.queueSize;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
