import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';

import type { Queue, Worker } from 'bullmq';
import { pino } from 'pino';

import { watchDrained, type DrainOptions } from '../src/worker/drain-watch.js';

/** Job counts that a fake queue reports. Tests change them between polls. */
interface Counts {
  waiting: number;
  active: number;
  delayed: number;
  prioritized: number;
  'waiting-children': number;
}

/** Creates a queue stand-in that records when each poll read the job counts. */
function fakeQueue(counts: Counts, schedulers = 0) {
  const polls: number[] = [];
  const queue = {
    getJobCounts: async () => {
      polls.push(Date.now());
      return { ...counts };
    },
    getJobSchedulersCount: async () => schedulers,
    getDelayed: async () =>
      Array.from({ length: counts.delayed }, () => ({
        repeatJobKey: 'scheduler',
        attemptsMade: 0,
      })),
  };
  return { queue: queue as unknown as Queue, polls };
}

function emptyCounts(): Counts {
  return {
    waiting: 0,
    active: 0,
    delayed: 0,
    prioritized: 0,
    'waiting-children': 0,
  };
}

const log = pino({ level: 'silent' });

/**
 * Resolves with the time onDrained was first called, or undefined. Unless
 * options set one, the watcher has no start-up grace.
 */
function watch(
  queue: Queue,
  worker: EventEmitter,
  timeoutMs: number,
  options: DrainOptions = {},
) {
  let drainedAt: number | undefined;
  const stop = watchDrained(
    queue,
    worker as unknown as Worker,
    () => (drainedAt ??= Date.now()),
    log,
    { startGraceMs: 0, ...options },
  );
  return delay(timeoutMs).then(() => {
    stop();
    return drainedAt;
  });
}

/** Waits for the next poll and returns its index in polls. */
async function nextPoll(polls: number[]): Promise<number> {
  const count = polls.length;
  while (polls.length === count) await delay(5);
  return count;
}

describe('watchDrained', () => {
  describe('when the queue stays empty', () => {
    it('reports drained at the first poll', async () => {
      const { queue, polls } = fakeQueue(emptyCounts());
      const drainedAt = await watch(queue, new EventEmitter(), 400);

      assert.ok(drainedAt !== undefined, 'never reported drained');
      const before = polls.filter((t) => t <= drainedAt);
      assert.equal(before.length, 1);
    });
  });

  describe('when a job waits', () => {
    it('reports drained at the first poll after it is gone', async () => {
      const counts = { ...emptyCounts(), waiting: 1 };
      const { queue, polls } = fakeQueue(counts);
      let drainedAt: number | undefined;
      const drained = watch(queue, new EventEmitter(), 500).then(
        (at) => (drainedAt = at),
      );
      await nextPoll(polls);
      await nextPoll(polls);
      assert.equal(drainedAt, undefined);
      counts.waiting = 0;
      const seen = polls.length;
      await drained;

      assert.ok(drainedAt !== undefined, 'never reported drained');
      const after = polls.slice(seen).filter((t) => t <= drainedAt!);
      assert.equal(after.length, 1, `polls ${polls.join(', ')}`);
    });
  });

  describe('when the last active job finishes', () => {
    it('polls at once instead of at the next tick', async () => {
      const counts = { ...emptyCounts(), active: 1 };
      const { queue, polls } = fakeQueue(counts);
      const worker = new EventEmitter();
      const drained = watch(queue, worker, 1000);
      await nextPoll(polls);
      counts.active = 0;
      const finishedAt = Date.now();
      worker.emit('completed');
      const drainedAt = await drained;

      assert.ok(drainedAt !== undefined, 'never reported drained');
      // The next tick would have come DRAIN_POLL_MS (50 ms) after the poll.
      assert.ok(drainedAt - finishedAt < 25, `${drainedAt - finishedAt} ms`);
    });
  });

  describe('when only a scheduler keeps a delayed job', () => {
    it('reports drained', async () => {
      const { queue } = fakeQueue({ ...emptyCounts(), delayed: 1 }, 1);
      const drainedAt = await watch(queue, new EventEmitter(), 400);

      assert.ok(drainedAt !== undefined, 'never reported drained');
    });
  });

  describe('when jobs keep waiting', () => {
    it('does not report drained', async () => {
      const { queue } = fakeQueue({ ...emptyCounts(), waiting: 2 });
      const drainedAt = await watch(queue, new EventEmitter(), 300);

      assert.equal(drainedAt, undefined);
    });
  });

  describe('when a producer is still queuing', () => {
    it('reports drained only after the producer leaves', async () => {
      const { queue } = fakeQueue(emptyCounts());
      let producers = 1;
      const drained = watch(queue, new EventEmitter(), 600, {
        countProducers: async () => producers,
      });
      await delay(300);
      const leftAt = Date.now();
      producers = 0;
      const drainedAt = await drained;

      assert.ok(drainedAt !== undefined, 'never reported drained');
      assert.ok(drainedAt >= leftAt, `${leftAt - drainedAt} ms early`);
    });
  });

  describe('when nothing has come yet', () => {
    it('waits out the start-up grace', async () => {
      const { queue } = fakeQueue(emptyCounts());
      const startedAt = Date.now();
      const drainedAt = await watch(queue, new EventEmitter(), 600, {
        startGraceMs: 300,
      });

      assert.ok(drainedAt !== undefined, 'never reported drained');
      assert.ok(drainedAt - startedAt >= 300, `${drainedAt - startedAt} ms`);
    });

    it('skips the grace once a producer came and left', async () => {
      const { queue } = fakeQueue(emptyCounts());
      let producers = 1;
      const startedAt = Date.now();
      const drained = watch(queue, new EventEmitter(), 1500, {
        countProducers: async () => producers,
        startGraceMs: 1000,
      });
      await delay(120);
      producers = 0;
      const drainedAt = await drained;

      assert.ok(drainedAt !== undefined, 'never reported drained');
      assert.ok(drainedAt - startedAt < 1000, `${drainedAt - startedAt} ms`);
    });
  });

  describe('when stopped', () => {
    it('polls no more', async () => {
      const { queue, polls } = fakeQueue({ ...emptyCounts(), waiting: 1 });
      await watch(queue, new EventEmitter(), 120);
      const count = polls.length;
      await delay(150);

      assert.equal(polls.length, count);
    });
  });
});
