import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { Piscina } from 'piscina';

import type { Entity } from './entity.js';
import type { ExtractTask, ThreadSettings } from './extract-task.js';
import { LexiconServer } from './lexicon-channel.js';

// How long close() waits for tasks, in ms. It matches piscina's default
// closeTimeout.
const CLOSE_TIMEOUT_MS = 30_000;

/**
 * A piscina pool whose threads each hold one resident model.
 *
 * Tasks wait in this class's own queue and reach piscina only when a thread
 * is free, so the pool tracks which tasks are running when it must stop.
 */
export class ExtractionPool {
  private readonly pool: Piscina;
  private readonly lexicon = new LexiconServer();
  private readonly queue: (() => void)[] = [];
  private readonly running = new Set<Promise<unknown>>();
  // Threads given to a task that runs or is about to run in piscina.
  private busyThreads = 0;
  private destroyed = false;

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
      workerData: { ...settings, lexiconChannel: this.lexicon.name },
      // A thread over its heap limit dies alone: piscina fails its task and
      // starts a new thread, and the queue retries the job.
      ...(settings.memoryMb > 0 && {
        resourceLimits: { maxOldGenerationSizeMb: settings.memoryMb },
      }),
    });
  }

  /**
   * Builds the lexicon at path once for all threads, as they load their
   * graphs. Threads whose graph takes the lexicon wait for this call, so
   * the owner of a pool over a folder that names one must make it.
   *
   * @throws ModelError for an unreadable or malformed lexicon file
   */
  provideLexicon(path: string): void {
    this.lexicon.provide(path);
  }

  /** Loads the model on every thread, so a broken model fails at start. */
  async warmUp(): Promise<void> {
    await Promise.all(
      Array.from({ length: this.threads }, () =>
        this.run({ texts: [], schema: [] }),
      ),
    );
  }

  /**
   * Runs one task on the next free thread.
   *
   * NOTE: once {@link destroy} has begun, no task settles, not even one
   * that finishes while destroy waits. Its caller is about to exit. A
   * rejection would make it record the chunks as failed when they were only
   * stopped, and a result could let it commit output it has given up.
   */
  async run(task: ExtractTask): Promise<Entity[][]> {
    await this.takeThread();
    if (this.destroyed) return never();
    const result = this.pool.run(task) as Promise<Entity[][]>;
    this.running.add(result);
    try {
      const entities = await result;
      return this.destroyed ? never() : entities;
    } catch (err) {
      if (this.destroyed) return never();
      throw err;
    } finally {
      this.running.delete(result);
      this.releaseThread();
    }
  }

  /** Tasks waiting for a free thread. */
  get queueSize(): number {
    return this.queue.length;
  }

  /**
   * Waits for queued and running tasks, then stops the threads.
   *
   * @throws Error "Close operation timed out" when the tasks take longer
   *   than 30 s, as piscina's own close does; the threads are stopped all
   *   the same
   */
  async close(): Promise<void> {
    const timeout = delay(CLOSE_TIMEOUT_MS, 'timeout' as const, { ref: false });
    // Queued tasks reach piscina only as running ones finish, and piscina
    // rejects tasks that arrive once it is closing.
    while (this.busyThreads > 0) {
      const running = Promise.allSettled(this.running);
      if ((await Promise.race([running, timeout])) === 'timeout') {
        await this.pool.destroy();
        this.lexicon.close();
        throw new Error('Close operation timed out');
      }
    }
    await this.pool.close();
    this.lexicon.close();
  }

  /**
   * Stops the threads for a process that exits without the results: drops
   * queued tasks, waits up to waitMs for running ones to leave their
   * threads, then terminates every thread. Call it before `process.exit`,
   * because a thread ended inside an ONNX Runtime run, whether by this
   * method or by the exit, aborts the whole process with "terminate called
   * after throwing an instance of 'Napi::Error'".
   *
   * @param waitMs - how long running tasks may take to finish, in ms
   */
  async destroy(waitMs: number): Promise<void> {
    this.destroyed = true;
    this.queue.length = 0;
    const finished = Promise.allSettled(this.running);
    await Promise.race([finished, delay(waitMs, undefined, { ref: false })]);
    // TODO: a thread still inside an ONNX Runtime run after waitMs aborts
    // the process here. The task module could check a shared stop flag
    // before each run, so the pool would wait for that run alone.
    await this.pool.destroy();
    this.lexicon.close();
  }

  /** Claims a free thread, waiting in the queue when all are busy. */
  private takeThread(): Promise<void> {
    if (this.destroyed) return never();
    if (this.busyThreads < this.threads) {
      this.busyThreads++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push(resolve));
  }

  /** Hands a thread to the next queued task, or marks it free. */
  private releaseThread(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.busyThreads--;
  }
}

/** Returns a promise that never settles. */
function never(): Promise<never> {
  return new Promise(() => {});
}
