/**
 * A span found by a rule plugin, in code-point offsets into the text, end
 * exclusive. A RegExp match index or `String.prototype.indexOf` counts UTF-16
 * units instead, so a plugin converts it, e.g. with
 * `[...text.slice(0, m.index)].length`.
 */
export interface RuleSpan {
  label: string;
  /** Offset of the first character, in code points. */
  start: number;
  /** Offset after the last character, in code points. */
  end: number;
  /** Normalised value, e.g. an ISO 8601 date for 时间. */
  value?: string;
}

/** A rule plugin adds spans for labels the model is not trained for. */
export interface RulePlugin {
  /** Name shown in each entity's `source` field and used in config. */
  name: string;
  /** Labels this plugin can produce; it runs only when the schema requests one of them. */
  labels: string[];
  /**
   * Finds spans in one text, with offsets in code points. Must be pure and
   * fast, because it runs on worker threads.
   */
  find(text: string): RuleSpan[];
}

/**
 * Module file of each plugin loaded from a path, so that an error can name
 * the file to fix.
 */
export const PLUGIN_FILES = new WeakMap<RulePlugin, string>();
