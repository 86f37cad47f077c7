/**
 * Hands one lexicon, built once by the main thread, to every pool thread.
 *
 * Each thread used to build its own trie from the lexicon file: about
 * 60 ms of CPU and several MiB per thread. The main thread now builds it
 * while the threads load their ONNX graphs and posts it as shared memory.
 * A thread requests it on a BroadcastChannel, so one that starts late, such
 * as a replacement for a thread that died, gets it too.
 */
import { BroadcastChannel } from 'node:worker_threads';

import { ModelError } from '../errors/errors.js';
import { Lexicon, type SharedLexicon } from '../tokenizer/lexicon.js';

/** Messages on the channel. */
type LexiconMessage =
  | { kind: 'request' }
  | { kind: 'lexicon'; lexicon: SharedLexicon }
  | { kind: 'failed'; message: string };

let channels = 0;

/**
 * The main thread's side: replies to every request with the lexicon once
 * {@link provide} has built it.
 */
export class LexiconServer {
  /** Name of the channel, passed to the threads in their settings. */
  readonly name = `uie-batch-lexicon-${process.pid}-${++channels}`;
  private readonly channel = new BroadcastChannel(this.name);
  private answer: LexiconMessage | undefined;
  private closed = false;

  constructor() {
    // Requests may come while the main thread is busy; they wait in the
    // channel's queue. The channel must not keep the process alive.
    this.channel.unref();
    this.channel.onmessage = (event) => {
      const message = (event as { data: LexiconMessage }).data;
      if (message.kind === 'request' && this.answer) {
        this.channel.postMessage(this.answer);
      }
    };
  }

  /**
   * Builds the lexicon from path and posts it to every thread that waits.
   *
   * @throws ModelError for an unreadable or malformed file; the threads
   *   that wait get the same message
   */
  async provide(path: string): Promise<Lexicon> {
    try {
      const lexicon = await Lexicon.fromFileYielding(path);
      this.post({ kind: 'lexicon', lexicon: lexicon.toShared() });
      return lexicon;
    } catch (err) {
      this.post({ kind: 'failed', message: (err as Error).message });
      throw err;
    }
  }

  /**
   * Fails the threads that wait for a lexicon that will not come, such as
   * when the pool closes because the model folder failed its check.
   */
  withdraw(reason: string): void {
    if (!this.answer) this.post({ kind: 'failed', message: reason });
  }

  close(): void {
    this.closed = true;
    this.channel.close();
  }

  private post(answer: LexiconMessage): void {
    this.answer = answer;
    // A pool may close while its lexicon is still being built.
    if (!this.closed) this.channel.postMessage(answer);
  }
}

/**
 * A pool thread's side: requests the lexicon from the main thread on the named
 * channel and waits for it.
 *
 * @throws ModelError when the main thread could not build it
 */
export function requestLexicon(name: string): Promise<Lexicon> {
  const channel = new BroadcastChannel(name);
  return new Promise<Lexicon>((resolve, reject) => {
    channel.onmessage = (event) => {
      const message = (event as { data: LexiconMessage }).data;
      if (message.kind === 'request') return;
      channel.close();
      if (message.kind === 'lexicon') {
        resolve(Lexicon.fromShared(message.lexicon));
      } else {
        reject(new ModelError(message.message));
      }
    };
    channel.postMessage({ kind: 'request' } satisfies LexiconMessage);
  });
}
