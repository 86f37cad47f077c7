import { PLUGIN_FILES, type RulePlugin, type RuleSpan } from './plugin.js';

/**
 * Runs a plugin's `find` on one text and checks every span it returns, so
 * a faulty plugin fails the text with its own name in the error instead of
 * writing entities with wrong offsets or text. The engine turns each error
 * below into that text's result, so the task's other texts keep theirs.
 *
 * Each error names the plugin and, for a plugin loaded from a path, its
 * module file: `rule plugin "ticker" (/srv/plugins/ticker.mjs)`.
 *
 * @param length - length of the text in code points
 * @returns the spans, each with integer offsets `0 <= start < end <= length`
 *   and a label the plugin declared
 * @throws Error naming the plugin when `find` throws, with the original
 *   message in its message and the original stack in its stack
 * @throws TypeError naming the plugin when `find` does not return an array
 *   of spans with a string label, number offsets and an optional string value
 * @throws RangeError naming the plugin for offsets that are not integers,
 *   lie outside the text or give an empty span, and for an undeclared label
 */
export function findPluginSpans(
  plugin: RulePlugin,
  text: string,
  length: number,
): RuleSpan[] {
  let found: unknown;
  try {
    found = plugin.find(text);
  } catch (err) {
    throw pluginFailure(plugin, err);
  }
  if (!Array.isArray(found)) {
    throw new TypeError(
      `${pluginName(plugin)}: find(text) must return an array of spans, got ${describe(found)}. Fix the plugin or remove it from the plugins setting`,
    );
  }
  for (const span of found) checkSpan(plugin, span, length);
  return found as RuleSpan[];
}

/**
 * Wraps an error thrown by a plugin with the original message, which the
 * output line and the failed chunk's record keep. The wrapper sets no
 * `cause`, because pino's error serializer appends a cause's message to the
 * logged message. Its stack ends with the original stack, so that a log of
 * this error shows the throw.
 */
function pluginFailure(plugin: RulePlugin, thrown: unknown): Error {
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  const error = new Error(`${pluginName(plugin)} failed: ${message}`);
  if (thrown instanceof Error && thrown.stack) {
    error.stack = `${error.stack}\ncaused by: ${thrown.stack}`;
    WITH_PLUGIN_STACK.add(error);
  }
  return error;
}

/** Errors of {@link findPluginSpans} whose stack ends with the plugin's. */
const WITH_PLUGIN_STACK = new WeakSet<Error>();

/**
 * Tells whether an error of {@link findPluginSpans} has a stack that shows
 * the plugin's own code: one thrown inside `find`. The stack of an invalid
 * span only shows the checks of this package.
 */
export function hasPluginStack(err: unknown): err is Error {
  return err instanceof Error && WITH_PLUGIN_STACK.has(err);
}

/**
 * Returns how errors name a plugin: `rule plugin "NAME"`, followed by the
 * module file of a plugin loaded from a path, which is the file to fix.
 */
function pluginName(plugin: RulePlugin): string {
  const file = PLUGIN_FILES.get(plugin);
  const name = `rule plugin "${plugin.name}"`;
  return file ? `${name} (${file})` : name;
}

function checkSpan(plugin: RulePlugin, span: unknown, length: number): void {
  const problem = typeProblem(span) ?? rangeProblem(plugin, span, length);
  if (!problem) return;
  const message =
    `${pluginName(plugin)} returned an invalid span ${describe(span)}: ` +
    `${problem.text}. Fix the plugin or remove it from the plugins setting`;
  throw problem.kind === 'type'
    ? new TypeError(message)
    : new RangeError(message);
}

interface Problem {
  kind: 'type' | 'range';
  text: string;
}

function typeProblem(span: unknown): Problem | undefined {
  const type = (text: string): Problem => ({ kind: 'type', text });
  if (typeof span !== 'object' || span === null || Array.isArray(span)) {
    return type('expected an object with label, start and end');
  }
  const { label, start, end, value } = span as Record<string, unknown>;
  if (typeof label !== 'string') return type('label must be a string');
  if (typeof start !== 'number') return type('start must be a number');
  if (typeof end !== 'number') return type('end must be a number');
  if (value !== undefined && typeof value !== 'string') {
    return type('value must be a string when present');
  }
  return undefined;
}

/** Checks the values of a span whose fields have the right types. */
function rangeProblem(
  plugin: RulePlugin,
  span: unknown,
  length: number,
): Problem | undefined {
  const { label, start, end } = span as RuleSpan;
  const range = (text: string): Problem => ({ kind: 'range', text });
  if (!plugin.labels.includes(label)) {
    return range(
      `label "${label}" is not among the plugin's labels (${plugin.labels.join(', ')})`,
    );
  }
  if (!Number.isInteger(start) || !Number.isInteger(end)) {
    return range('start and end must be integer code-point offsets');
  }
  if (start < 0 || end > length || start >= end) {
    return range(
      `expected 0 <= start < end <= ${length}, the text length in code points`,
    );
  }
  return undefined;
}

/** Returns a short JSON rendering of a value for an error message. */
function describe(value: unknown): string {
  // JSON renders a Promise as {}, which hides that find() was async.
  if (value instanceof Promise) {
    return 'a Promise (find must return its spans directly, not be async)';
  }
  let json: string | undefined;
  try {
    // JSON renders NaN and Infinity as null, which hides the fault.
    json = JSON.stringify(value, (_key, v: unknown) =>
      typeof v === 'number' && !Number.isFinite(v) ? String(v) : v,
    );
  } catch {
    json = undefined;
  }
  if (json === undefined) return typeof value;
  return json.length > 200 ? `${json.slice(0, 200)}…` : json;
}
