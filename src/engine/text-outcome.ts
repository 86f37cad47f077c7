import type { Logger } from 'pino';

import type { Entity } from './entity.js';

/**
 * A text of a task on which a rule plugin failed. The plugin fails the same
 * way on every run of that text, so consumers record the error for the
 * text's document instead of retrying it.
 */
export interface TextFailure {
  /**
   * The error as `Name: message`, e.g. `Error: rule plugin "ticker"
   * (/srv/plugins/ticker.mjs) failed: ...`, which names the plugin and,
   * for a plugin loaded from a path, its module file.
   */
  error: string;
  /** Stack of the plugin's throw, for the log; output lines leave it out. */
  stack?: string;
}

/**
 * Formats an error as `Name: message`, the form of the `error` field of an
 * output line and of a failed chunk's record.
 */
export function errorLine(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Result of one text of a task: its entities, or the plugin failure on it. */
export type TextOutcome = Entity[] | TextFailure;

/**
 * Logs where a rule plugin threw, which output lines and failed-chunk
 * records leave out. Each distinct error is logged once, and at most
 * `limit` of them, so a plugin that fails on every text logs a few lines.
 */
export class PluginStackLog {
  private readonly seen = new Set<string>();

  constructor(
    private readonly log: Logger,
    private readonly limit = 5,
  ) {}

  /** Logs the stacks of the failures among a task's outcomes not seen yet. */
  note(outcomes: readonly TextOutcome[]): void {
    for (const outcome of outcomes) {
      if (Array.isArray(outcome) || outcome.stack === undefined) continue;
      if (this.seen.size >= this.limit || this.seen.has(outcome.error)) {
        continue;
      }
      this.seen.add(outcome.error);
      this.log.warn(
        { error: outcome.error, stack: outcome.stack },
        'rule plugin failed on a text; the stack shows where it threw',
      );
    }
  }
}
