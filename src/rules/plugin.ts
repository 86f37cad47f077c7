/** A span found by a rule plugin, in code-point offsets into the text, end exclusive. */
export interface RuleSpan {
  label: string;
  start: number;
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
  /** Find spans in one text. Must be pure and fast: it runs on worker threads. */
  find(text: string): RuleSpan[];
}
