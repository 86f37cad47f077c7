import type { RulePlugin } from './plugin.js';
import { timePlugin } from './time.js';

const PLUGINS: Record<string, RulePlugin> = {
  [timePlugin.name]: timePlugin,
};

/** Names of the rule plugins this build ships. */
export const KNOWN_PLUGINS = Object.keys(PLUGINS);

/**
 * Returns the plugins named in config, in that order.
 *
 * @throws RangeError for an unknown name, listing the known ones
 */
export function createPlugins(names: string[]): RulePlugin[] {
  return names.map((name) => {
    const plugin = PLUGINS[name];
    if (!plugin) {
      throw new RangeError(
        `plugins: unknown rule plugin "${name}"; known plugins: ${KNOWN_PLUGINS.join(', ')}`,
      );
    }
    return plugin;
  });
}
