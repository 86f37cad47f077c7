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
}

/** Result of one text of a task: its entities, or the plugin failure on it. */
export type TextOutcome = Entity[] | TextFailure;
