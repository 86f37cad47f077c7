/**
 * Shared memory through which the pool stops a task without ending its
 * thread inside ONNX Runtime.
 *
 * Ending a worker thread during a native ONNX Runtime call, a model load or
 * a run, aborts the whole process with "terminate called after throwing an
 * instance of 'Napi::Error'" (onnxruntime-node 1.31). So each task gets a
 * slot in which its thread records when it enters and leaves ONNX Runtime.
 * The pool ends a thread only after a compare-and-swap has moved the slot
 * from "in JavaScript" to "stopped", and a thread enters ONNX Runtime only
 * by the opposite compare-and-swap, so the two can never cross.
 *
 * Threads make native calls only during a task: an idle piscina thread
 * blocks in Atomics.wait, so even its model load advances only while its
 * first task waits for it.
 *
 * The import of the onnxruntime-node addon when a thread starts is not
 * covered here, so ExtractionPool.destroy first waits for the warm-up
 * tasks, which settle only after that import.
 */
import { setTimeout as delay } from 'node:timers/promises';

/** Step of a task before its thread has a loaded model. */
export const STEP_LOADING = -2;
/** Step of a task that tokenises or runs the model; plugin k is step k. */
export const STEP_MODEL = -1;

// Each slot has two words: its state, the task's tag times 4 plus one of
// the states below, and its step. The tag distinguishes a task from the
// earlier tasks of its slot, whose threads may still be exiting.
const IN_JS = 0;
const IN_NATIVE = 1;
const STOP_AFTER_NATIVE = 2;
const STOPPED = 3;
// Keeps tag * 4 + state within a positive int32.
const MAX_TAG = (1 << 29) - 1;
// Poll interval while a thread finishes a model run, which takes a few ms
// with models/tiny and the default batchTokens.
const POLL_MS = 5;

/** A task's slot in the shared memory, sent to its thread with the task. */
export interface TaskTicket {
  slot: number;
  tag: number;
}

/**
 * Calls through which a pool thread lets the pool follow and stop its
 * task. The extractor calls them at each model run and plugin.
 */
export interface TaskHooks {
  /**
   * Runs fn, a call into ONNX Runtime, unless the pool stopped the task.
   *
   * @throws Error "extraction task stopped by the pool" instead of calling fn
   */
  native<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Records the task's step: {@link STEP_MODEL}, or the index of the rule
   * plugin about to run.
   *
   * @throws Error "extraction task stopped by the pool" when it was stopped
   */
  step(step: number): void;
}

/** Hooks of a task that nothing stops. */
export const NO_HOOKS: TaskHooks = {
  native: (fn) => fn(),
  step: () => {},
};

/** The pool's side: hands out the slots and stops tasks. */
export class ThreadControl {
  /** Memory shared with the threads, passed to them in workerData. */
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  private readonly free: number[];
  private readonly claimed = new Map<number, TaskTicket>();
  private lastTag = 0;

  /** @param slots - tasks that may run at once: one per thread */
  constructor(slots: number) {
    this.buffer = new SharedArrayBuffer(
      slots * 2 * Int32Array.BYTES_PER_ELEMENT,
    );
    this.words = new Int32Array(this.buffer);
    this.free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
  }

  /**
   * Gives a task about to go to a thread a slot of its own.
   *
   * @throws Error when every slot is taken, which the pool's own thread
   *   count prevents
   */
  claim(): TaskTicket {
    const slot = this.free.pop();
    if (slot === undefined) {
      throw new Error(
        'ThreadControl: more tasks than slots; claim() must follow a free thread',
      );
    }
    this.lastTag = (this.lastTag % MAX_TAG) + 1;
    const ticket = { slot, tag: this.lastTag };
    Atomics.store(this.words, 2 * slot, ticket.tag * 4 + IN_JS);
    Atomics.store(this.words, 2 * slot + 1, STEP_LOADING);
    this.claimed.set(slot, ticket);
    return ticket;
  }

  /** Frees the slot of a task that has settled or been stopped. */
  release(ticket: TaskTicket): void {
    if (this.claimed.get(ticket.slot) !== ticket) return;
    this.claimed.delete(ticket.slot);
    this.free.push(ticket.slot);
  }

  /**
   * Marks a task whose thread returned its outcome or died as stopped, so
   * {@link stop} does not wait for a thread that can no longer leave.
   */
  finish(ticket: TaskTicket): void {
    const index = 2 * ticket.slot;
    for (;;) {
      const word = Atomics.load(this.words, index);
      // A later task may have the slot already.
      if (word >> 2 !== ticket.tag) return;
      const stopped = ticket.tag * 4 + STOPPED;
      if (Atomics.compareExchange(this.words, index, word, stopped) === word) {
        return;
      }
    }
  }

  /** Returns the last step a task's thread recorded. */
  step(ticket: TaskTicket): number {
    return Atomics.load(this.words, 2 * ticket.slot + 1);
  }

  /**
   * Marks a task stopped, so its thread makes no further call into ONNX
   * Runtime, and waits for the call in progress, if any, to return. After
   * that the thread may be ended.
   *
   * @returns whether the thread was inside ONNX Runtime. Such a thread
   *   fails its task by itself at its next model run or plugin, so ending
   *   it, and loading the model again, is seldom needed.
   */
  async stop(ticket: TaskTicket): Promise<boolean> {
    const index = 2 * ticket.slot;
    const base = ticket.tag * 4;
    let waited = false;
    for (;;) {
      const word = Atomics.compareExchange(
        this.words,
        index,
        base + IN_JS,
        base + STOPPED,
      );
      if (word === base + IN_JS || word === base + STOPPED) return waited;
      if (word === base + IN_NATIVE) {
        Atomics.compareExchange(
          this.words,
          index,
          word,
          base + STOP_AFTER_NATIVE,
        );
      } else if (word === base + STOP_AFTER_NATIVE) {
        waited = true;
        await delay(POLL_MS);
      } else {
        // Another task has the slot, so this one has ended.
        return waited;
      }
    }
  }

  /** Stops every task that has a slot; see {@link stop}. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.claimed.values()].map((t) => this.stop(t)));
  }
}

/**
 * A pool thread's side: records its calls into ONNX Runtime in the slot of
 * the task it runs, and blocks new ones once the pool stopped that task.
 */
export class ThreadGate implements TaskHooks {
  private readonly words: Int32Array | undefined;
  private task: TaskTicket | undefined;
  // Whether this thread is inside ONNX Runtime, also for a model load that
  // began before the current task.
  private inside = false;

  /** @param buffer - {@link ThreadControl.buffer}; without it nothing stops */
  constructor(buffer: SharedArrayBuffer | undefined) {
    this.words = buffer && new Int32Array(buffer);
  }

  /**
   * Takes the slot of a task that starts on this thread.
   *
   * @throws Error "extraction task stopped by the pool" when the pool
   *   stopped it while a model load of this thread is in progress
   */
  begin(ticket: TaskTicket | undefined): void {
    this.task = this.words ? ticket : undefined;
    if (this.inside) this.enter();
  }

  /** Leaves the slot of the task that ended. */
  end(): void {
    this.task = undefined;
  }

  async native<T>(fn: () => Promise<T>): Promise<T> {
    this.enter();
    this.inside = true;
    try {
      return await fn();
    } finally {
      this.inside = false;
      this.leave();
    }
  }

  step(step: number): void {
    if (!this.task || !this.words) return;
    const { slot, tag } = this.task;
    // Steps are taken outside ONNX Runtime, so any other word means the
    // task was stopped and its slot may already belong to another task.
    if (Atomics.load(this.words, 2 * slot) !== tag * 4 + IN_JS) {
      throw stoppedError();
    }
    Atomics.store(this.words, 2 * slot + 1, step);
  }

  private enter(): void {
    if (!this.task || !this.words) return;
    const { slot, tag } = this.task;
    const word = Atomics.compareExchange(
      this.words,
      2 * slot,
      tag * 4 + IN_JS,
      tag * 4 + IN_NATIVE,
    );
    if (word !== tag * 4 + IN_JS) throw stoppedError();
  }

  private leave(): void {
    if (!this.task || !this.words) return;
    const { slot, tag } = this.task;
    const word = Atomics.compareExchange(
      this.words,
      2 * slot,
      tag * 4 + IN_NATIVE,
      tag * 4 + IN_JS,
    );
    if (word === tag * 4 + STOP_AFTER_NATIVE) {
      Atomics.store(this.words, 2 * slot, tag * 4 + STOPPED);
    }
  }
}

function stoppedError(): Error {
  return new Error(
    'extraction task stopped by the pool, which timed it out or is shutting down',
  );
}
