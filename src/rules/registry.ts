import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { ConfigError } from '../errors/errors.js';
import { PLUGIN_FILES, type RulePlugin } from './plugin.js';
import {
  formatPosition,
  syntaxErrorPosition,
} from './syntax-error-position.js';
import { timePlugin } from './time.js';

const PLUGINS: Record<string, RulePlugin> = {
  [timePlugin.name]: timePlugin,
};

/** Source of the model's entities, a name that no plugin may take. */
const MODEL_SOURCE = 'model';

/** Names of the rule plugins this build ships. */
export const KNOWN_PLUGINS = Object.keys(PLUGINS);

/** Tells a module path in the plugin list from a built-in plugin name. */
export function isPluginPath(entry: string): boolean {
  return /[\\/]/.test(entry) || /\.[cm]?js$/.test(entry);
}

/**
 * Returns how messages name a loaded plugin: `rule plugin "NAME"`, followed
 * by the module path for a plugin loaded from a file, which is where the
 * plugins setting names it.
 *
 * @param entry - the plugin's entry in the plugins setting
 */
export function describePlugin(plugin: RulePlugin, entry: string): string {
  const name = `rule plugin "${plugin.name}"`;
  return isPluginPath(entry) ? `${name} (${entry})` : name;
}

/**
 * Returns config's plugin list with module paths made absolute, so pool
 * threads load the same files whatever their working directory.
 */
export function resolvePluginEntries(
  entries: string[],
  base: string,
): string[] {
  return entries.map((e) =>
    isPluginPath(e) && !isAbsolute(e) ? resolve(base, e) : e,
  );
}

/**
 * Returns the plugins listed in config, in that order. An entry is either
 * the name of a built-in plugin or the path of an ES module whose default
 * export is a {@link RulePlugin}.
 *
 * @throws RangeError for an unknown name, listing the known ones, and for
 *   a module that cannot be imported, with the file, line and column of a
 *   syntax error in it
 * @throws ConfigError for a module that does not export a plugin, or one
 *   whose name is empty or "model"
 */
export async function loadPlugins(entries: string[]): Promise<RulePlugin[]> {
  const plugins: RulePlugin[] = [];
  for (const entry of entries) {
    if (isPluginPath(entry)) {
      plugins.push(await importPlugin(entry));
      continue;
    }
    const plugin = PLUGINS[entry];
    if (!plugin) {
      throw new RangeError(
        `plugins (UIE_PLUGINS): unknown rule plugin "${entry}"; known plugins: ${KNOWN_PLUGINS.join(', ')}, or the path of a .js module`,
      );
    }
    plugins.push(plugin);
  }
  // Two plugins of one name would share the entities'
  // "source" value and the plugin name in error messages.
  const names = plugins.map((p) => p.name);
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated !== undefined) {
    throw new ConfigError(
      `plugins (UIE_PLUGINS): two rule plugins are named "${repeated}" in ${entries.join(',')}; list each plugin once and give a plugin of your own another name`,
    );
  }
  return plugins;
}

async function importPlugin(path: string): Promise<RulePlugin> {
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(resolve(path)).href)) as {
      default?: unknown;
    };
  } catch (err) {
    const position =
      err instanceof SyntaxError
        ? await syntaxErrorPosition(err, resolve(path))
        : undefined;
    const where = position ? ` at ${formatPosition(position)}` : '';
    throw new RangeError(
      `plugins (UIE_PLUGINS): cannot load rule plugin module ${path}: ${(err as Error).message}${where}`,
      { cause: err },
    );
  }
  const plugin = module.default as Partial<RulePlugin> | undefined;
  if (
    !plugin ||
    typeof plugin.name !== 'string' ||
    !Array.isArray(plugin.labels) ||
    !plugin.labels.every((l) => typeof l === 'string') ||
    typeof plugin.find !== 'function'
  ) {
    throw new ConfigError(
      `plugins (UIE_PLUGINS): invalid rule plugin module ${path}: expected a default export with a string name, an array of string labels and a find(text) function`,
    );
  }
  // The name becomes each entity's "source", where "model" marks the spans
  // that a rule's overlapping spans replace.
  const invalid = `plugins (UIE_PLUGINS): invalid rule plugin module ${path}`;
  if (plugin.name.trim() === '') {
    throw new ConfigError(
      `${invalid}: its name is empty; give the plugin a name, which becomes the "source" of its entities`,
    );
  }
  if (plugin.name === MODEL_SOURCE) {
    throw new ConfigError(
      `${invalid}: its name "${MODEL_SOURCE}" is the source of the model's own entities; give the plugin another name`,
    );
  }
  // A plugin runs only for the labels of the schema that it declares, so
  // one without labels would never run.
  if (plugin.labels.length === 0) {
    throw new ConfigError(
      `${invalid}: its labels are empty, so it would never run; list the labels its spans carry`,
    );
  }
  PLUGIN_FILES.set(plugin as RulePlugin, resolve(path));
  return plugin as RulePlugin;
}
