import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';

import {
  STEP_LOADING,
  STEP_MODEL,
  ThreadControl,
  ThreadGate,
} from '../src/engine/thread-control.js';

const STOPPED = /extraction task stopped by the pool/;

/** Returns a promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Returns whether a promise settles within ms. */
async function settlesWithin(promise: Promise<unknown>, ms: number) {
  const settled = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    delay(ms, false),
  ]);
  return settled;
}

describe('ThreadControl', () => {
  it('stops a task outside ONNX Runtime at once', async () => {
    const control = new ThreadControl(1);
    const gate = new ThreadGate(control.buffer);
    const ticket = control.claim();
    gate.begin(ticket);

    await control.stop(ticket);
    await assert.rejects(
      gate.native(async () => 'ran'),
      STOPPED,
    );
    assert.throws(() => gate.step(0), STOPPED);
  });

  it('waits for a run in progress', async () => {
    const control = new ThreadControl(1);
    const gate = new ThreadGate(control.buffer);
    const ticket = control.claim();
    gate.begin(ticket);
    const run = deferred();
    const running = gate.native(() => run.promise);

    const stopping = control.stop(ticket);
    assert.equal(await settlesWithin(stopping, 50), false);
    run.resolve();
    await running;
    assert.equal(await settlesWithin(stopping, 1000), true);
    await assert.rejects(
      gate.native(async () => 'ran'),
      STOPPED,
    );
  });

  it('covers a load that began before the task', async () => {
    const control = new ThreadControl(1);
    const gate = new ThreadGate(control.buffer);
    const load = deferred();
    const loading = gate.native(() => load.promise);
    const ticket = control.claim();
    gate.begin(ticket);

    const stopping = control.stop(ticket);
    assert.equal(await settlesWithin(stopping, 50), false);
    load.resolve();
    await loading;
    assert.equal(await settlesWithin(stopping, 1000), true);
  });

  it('stops waiting for a thread that died', async () => {
    const control = new ThreadControl(1);
    const gate = new ThreadGate(control.buffer);
    const ticket = control.claim();
    gate.begin(ticket);
    void gate.native(() => new Promise(() => {}));

    const stopping = control.stop(ticket);
    assert.equal(await settlesWithin(stopping, 50), false);
    control.finish(ticket);
    assert.equal(await settlesWithin(stopping, 1000), true);
  });

  it('keeps an old thread out of a reused slot', async () => {
    const control = new ThreadControl(1);
    const oldGate = new ThreadGate(control.buffer);
    const oldTicket = control.claim();
    oldGate.begin(oldTicket);
    await control.stop(oldTicket);
    control.release(oldTicket);

    const ticket = control.claim();
    assert.equal(ticket.slot, oldTicket.slot);
    assert.notEqual(ticket.tag, oldTicket.tag);
    await assert.rejects(
      oldGate.native(async () => 'ran'),
      STOPPED,
    );
    assert.throws(() => oldGate.step(3), STOPPED);
    assert.equal(control.step(ticket), STEP_LOADING);
    control.finish(oldTicket);

    const gate = new ThreadGate(control.buffer);
    gate.begin(ticket);
    gate.step(STEP_MODEL);
    assert.equal(control.step(ticket), STEP_MODEL);
    assert.equal(await gate.native(async () => 'ran'), 'ran');
  });

  it('gives each running task its own slot', () => {
    const control = new ThreadControl(2);
    const first = control.claim();
    const second = control.claim();
    assert.notEqual(first.slot, second.slot);
    assert.throws(() => control.claim(), /more tasks than slots/);
  });
});
