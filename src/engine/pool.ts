import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { Piscina } from 'piscina';

import { envName } from '../config/config.js';
import { PluginTimeoutError } from '../errors/errors.js';
import { describePlugin, loadPlugins } from '../rules/registry.js';
import type {
  ExtractTask,
  ThreadSettings,
  ThreadTask,
} from './extract-task.js';
import { LexiconServer } from './lexicon-channel.js';
import type { TextOutcome } from './text-outcome.js';
import {
  STEP_LOADING,
  STEP_MODEL,
  ThreadControl,
  type TaskTicket,
} from './thread-control.js';

// How long close() waits for tasks, in ms. It matches piscina's default
// closeTimeout.
const CLOSE_TIMEOUT_MS = 30_000;

/** Options of an {@link ExtractionPool}. */
export interface ExtractionPoolOptions {
  /**
   * Time limit of one task in ms, counted from when a thread is given to
   * it, without time the thread spends loading the model. 0 means no
   * limit. A task over it fails. Its thread is ended and
   * replaced, unless it was inside a model run and stops by itself after
   * that run.
   * @defaultValue 120000, as `taskTimeoutSeconds` in config/default.json
   */
  taskTimeoutMs?: number;
}

/** Defaults of {@link ExtractionPoolOptions}. */
export const DEFAULT_EXTRACTION_POOL_OPTIONS: Required<ExtractionPoolOptions> =
  { taskTimeoutMs: 120_000 };

const TIMED_OUT = Symbol('timed out');
// How long a task stopped after a model run may take to fail by itself
// before its thread is ended. Decoding one batch takes milliseconds.
const STOP_GRACE_MS = 1000;

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
  private readonly control: ThreadControl;
  private readonly options: Required<ExtractionPoolOptions>;
  private readonly plugins: string[];
  /** Names of the plugins for messages, in the order of `plugins`. */
  private pluginNames?: Promise<string[]>;
  // Threads given to a task that runs or is about to run in piscina.
  private busyThreads = 0;
  private destroyed = false;
  private readonly memoryMb: number;
  /** Warm-up tasks in piscina that have not settled. */
  private readonly warmUps = new Set<Promise<unknown>>();
  /** Rejects when a thread dies outside any task. */
  private readonly threadFailure: Promise<never>;

  /**
   * @throws RangeError when taskTimeoutMs is not a number >= 0
   */
  constructor(
    readonly threads: number,
    settings: ThreadSettings,
    options: ExtractionPoolOptions = {},
  ) {
    this.options = { ...DEFAULT_EXTRACTION_POOL_OPTIONS, ...options };
    const limit = this.options.taskTimeoutMs;
    if (!(Number.isFinite(limit) && limit >= 0)) {
      throw new RangeError(
        `taskTimeoutMs: expected a number >= 0, got ${limit}`,
      );
    }
    this.plugins = settings.plugins;
    this.memoryMb = settings.memoryMb;
    this.control = new ThreadControl(threads);
    this.pool = new Piscina({
      filename: fileURLToPath(new URL('./extract-task.js', import.meta.url)),
      minThreads: threads,
      maxThreads: threads,
      // Threads must stay alive because each one contains a loaded model.
      idleTimeout: Number.POSITIVE_INFINITY,
      // Idle threads block in Atomics.wait, so they make no call into ONNX
      // Runtime between tasks, which thread-control.ts relies on.
      atomics: 'sync',
      workerData: {
        ...settings,
        lexiconChannel: this.lexicon.name,
        control: this.control.buffer,
      },
      // A thread over its heap limit dies alone: piscina fails its task and
      // starts a new thread, and the queue retries the job.
      ...(settings.memoryMb > 0 && {
        resourceLimits: { maxOldGenerationSizeMb: settings.memoryMb },
      }),
    });
    // Piscina reports a thread that dies outside a task, such as one over
    // its heap limit while it starts, as an 'error' event, which would end
    // the process with a stack trace. It fails the warm-up instead.
    this.threadFailure = new Promise<never>((_, reject) => {
      this.pool.on('error', reject);
    });
    this.threadFailure.catch(() => undefined);
  }

  /**
   * Builds the lexicon at path once for all threads, as they load their
   * graphs. Threads whose graph takes the lexicon wait for this call, so
   * the owner of a pool over a folder that names one must make it.
   *
   * @throws ModelError for an unreadable or malformed lexicon file
   */
  async provideLexicon(path: string): Promise<void> {
    await this.lexicon.provide(path);
  }

  /** Loads the model on every thread, so a broken model fails at start. */
  async warmUp(): Promise<void> {
    const loads = Promise.all(
      Array.from({ length: this.threads }, () =>
        this.run({ texts: [], schema: [] }),
      ),
    );
    try {
      await Promise.race([loads, this.threadFailure]);
    } catch (err) {
      throw threadError(err, this.memoryMb);
    }
  }

  /**
   * Runs one task on the next free thread.
   *
   * NOTE: once {@link destroy} has begun, no task settles, not even one
   * that finishes while destroy waits. Its caller is about to exit. A
   * rejection would make it record the chunks as failed when they were only
   * stopped, and a result could let it commit output it has given up.
   *
   * @returns one outcome per text of the task: its entities, or the error
   *   of a rule plugin that failed on it
   * @throws PluginTimeoutError "extraction task of N texts timed out after
   *   S s in rule plugin ..." when the task takes longer than taskTimeoutMs
   *   inside a rule plugin; its thread is replaced
   * @throws Error "extraction task of N texts timed out after S s ..." when
   *   the task takes longer than taskTimeoutMs elsewhere, as in the model
   * @throws RangeError when a text is too long for the model
   * @throws the error of a failed model run or of a thread that died
   */
  async run(task: ExtractTask): Promise<TextOutcome[]> {
    await this.takeThread();
    if (this.destroyed) return never();
    const ticket = this.control.claim();
    const result = this.runLimited(task, ticket);
    this.running.add(result);
    try {
      const outcomes = await result;
      return this.destroyed ? never() : outcomes;
    } catch (err) {
      if (this.destroyed) return never();
      throw err;
    } finally {
      this.running.delete(result);
      this.control.release(ticket);
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
    this.lexicon.withdraw('the pool closed before the lexicon was built');
    // Queued tasks reach piscina only as running ones finish, and piscina
    // rejects tasks that arrive once it is closing.
    while (this.busyThreads > 0) {
      const running = Promise.allSettled(this.running);
      if ((await Promise.race([running, timeout])) === 'timeout') {
        await this.control.stopAll();
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
   * queued tasks and stops running ones before their next model run. It
   * waits for a model run or load in progress, however long it takes,
   * because a thread ended inside one aborts the whole process with
   * "terminate called after throwing an instance of 'Napi::Error'". Then it
   * terminates every thread. Call it before `process.exit`, which would end
   * the threads wherever they are.
   *
   * @param waitMs - how long running tasks may take to settle once stopped,
   *   in ms. A task inside a rule plugin needs it to finish its chunk.
   */
  async destroy(waitMs: number): Promise<void> {
    this.destroyed = true;
    this.queue.length = 0;
    this.lexicon.withdraw('the pool stopped before the lexicon was built');
    const stopped = this.control.stopAll();
    const finished = Promise.allSettled(this.running);
    await Promise.race([finished, delay(waitMs, undefined, { ref: false })]);
    await stopped;
    // A thread ended while it loads the ONNX Runtime addon aborts the
    // process too, and that load is outside what thread-control.ts tracks.
    // A warm-up settles once its thread has loaded the model or failed to,
    // which the withdrawn lexicon makes quick.
    await Promise.allSettled(this.warmUps);
    await this.pool.destroy();
    this.lexicon.close();
  }

  /**
   * Runs a task on the thread claimed for it, within taskTimeoutMs.
   *
   * The thread of a task past the limit is ended, so a rule plugin that
   * never returns cannot hold it. A thread inside ONNX Runtime is first
   * left to finish its model run or load, because ending it there would
   * abort the whole process, and batchTokens keeps one run short.
   */
  private async runLimited(
    task: ExtractTask,
    ticket: TaskTicket,
  ): Promise<TextOutcome[]> {
    const abort = new AbortController();
    const sent: ThreadTask = { ...task, ticket };
    const result = this.pool.run(sent, {
      signal: abort.signal,
    }) as Promise<TextOutcome[]>;
    const finish = () => this.control.finish(ticket);
    void result.then(finish, finish);
    if (task.texts.length === 0) {
      // A warm-up: its thread may still be loading the ONNX Runtime addon.
      this.warmUps.add(result);
      const settled = () => this.warmUps.delete(result);
      void result.then(settled, settled);
    }
    const limit = this.options.taskTimeoutMs;
    if (limit === 0) return result;

    // The limit is for extraction. While the task's thread still loads the
    // model (at start, or after it replaced an ended thread), the timer
    // starts again, so a slow disk or a busy machine cannot fail a task.
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<typeof TIMED_OUT>((resolve) => {
        timer = setTimeout(resolve, limit, TIMED_OUT);
      });
      try {
        const first = await Promise.race([result, timedOut]);
        if (first !== TIMED_OUT) return first;
      } finally {
        clearTimeout(timer);
      }
      if (this.control.step(ticket) !== STEP_LOADING) break;
    }

    // The task's own outcome, an abort or a stop, no longer matters.
    result.catch(() => undefined);
    const step = this.control.step(ticket);
    if (await this.control.stop(ticket)) {
      // The thread left a model run and fails the task at its next run or
      // plugin, which keeps its loaded model.
      const grace = new AbortController();
      const settled = result.then(
        () => grace.abort(),
        () => grace.abort(),
      );
      const timeout = delay(STOP_GRACE_MS, undefined, { signal: grace.signal });
      await Promise.race([settled, timeout.catch(() => undefined)]);
      grace.abort();
    }
    // Piscina terminates the thread of a task that is still running and
    // starts a new one, which loads the model again. A settled task has
    // no abort listener left, so its thread stays.
    abort.abort();
    throw await this.timeoutError(task, step);
  }

  private async timeoutError(task: ExtractTask, step: number): Promise<Error> {
    const texts =
      task.texts.length === 1 ? '1 text' : `${task.texts.length} texts`;
    const setting = `taskTimeoutSeconds (${envName('taskTimeoutSeconds')})`;
    const head = `extraction task of ${texts} timed out after ${this.options.taskTimeoutMs / 1000} s`;
    if (step >= 0) {
      const plugin = (await this.describePlugins())[step];
      return new PluginTimeoutError(
        `${head} in ${plugin}; fix or remove that plugin, ` +
          `or raise ${setting} if it is only slow`,
      );
    }
    const where =
      step === STEP_MODEL
        ? 'in the model'
        : 'before its thread had loaded the model';
    return new Error(
      `${head} ${where}; raise ${setting} for a model or machine this slow`,
    );
  }

  /**
   * Names the plugins as other plugin errors do. Their modules are loaded
   * here once; the engine has loaded them already, so the imports are
   * cached. A module that no longer loads is named by its entry.
   */
  private describePlugins(): Promise<string[]> {
    this.pluginNames ??= loadPlugins(this.plugins).then(
      (plugins) => plugins.map((p, i) => describePlugin(p, this.plugins[i])),
      () => this.plugins.map((entry) => `rule plugin ${entry}`),
    );
    return this.pluginNames;
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

/** Returns the error of a thread that died outside a task, naming what to change. */
function threadError(err: unknown, memoryMb: number): Error {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return new RangeError(
      `a pool thread ran out of memory: threadMemoryMb (${envName('threadMemoryMb')}) is ${memoryMb} MiB, ` +
        'too little to load the model; raise it, or set 0 for the default of Node.js',
      { cause: err },
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** Returns a promise that never settles. */
function never(): Promise<never> {
  return new Promise(() => {});
}
