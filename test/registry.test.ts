import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  describePlugin,
  loadPlugins,
  resolvePluginEntries,
} from '../src/rules/registry.js';
import { tempDir } from './helpers.js';

describe('when config lists rule plugins', () => {
  const dir = tempDir('plugins');

  it('loads built-in plugins by name', async () => {
    const [time] = await loadPlugins(['time']);
    assert.equal(time.name, 'time');
    assert.deepEqual(time.labels, ['时间']);
  });

  it('loads a plugin module from its path', async () => {
    const path = join(dir, 'ticker.mjs');
    writeFileSync(
      path,
      `export default { name: 'ticker', labels: ['股票'], find: (t) =>
        [...t.matchAll(/[0-9]{6}/g)].map((m) => ({ label: '股票',
          start: m.index, end: m.index + 6 })) };\n`,
    );
    const [ticker] = await loadPlugins(
      resolvePluginEntries(['./ticker.mjs'], dir),
    );
    assert.equal(ticker.name, 'ticker');
    assert.deepEqual(ticker.find('买入600519。'), [
      { label: '股票', start: 2, end: 8 },
    ]);
  });

  it('names a built-in plugin by its name', async () => {
    const [time] = await loadPlugins(['time']);
    assert.equal(describePlugin(time, 'time'), 'rule plugin "time"');
  });

  it('names a module plugin by its name and path', async () => {
    const path = join(dir, 'named.mjs');
    writeFileSync(
      path,
      "export default { name: 'ticker', labels: ['股票'], find: () => [] };\n",
    );
    const [plugin] = await loadPlugins([path]);
    assert.equal(
      describePlugin(plugin, path),
      `rule plugin "ticker" (${path})`,
    );
  });

  it('rejects an unknown name and lists the known ones', async () => {
    await assert.rejects(loadPlugins(['money']), {
      name: 'RangeError',
      message:
        'plugins (UIE_PLUGINS): unknown rule plugin "money"; known plugins: time, or the path of a .js module',
    });
  });

  it('rejects a module that does not export a plugin', async () => {
    const path = join(dir, 'empty.mjs');
    writeFileSync(path, 'export const name = "empty";\n');
    await assert.rejects(loadPlugins([path]), {
      name: 'ConfigError',
      message: `plugins (UIE_PLUGINS): invalid rule plugin module ${path}: expected a default export with a string name, an array of string labels and a find(text) function`,
    });
  });

  it('rejects a plugin named model', async () => {
    const path = join(dir, 'model.mjs');
    writeFileSync(
      path,
      "export default { name: 'model', labels: ['股票'], find: () => [] };\n",
    );
    await assert.rejects(loadPlugins([path]), {
      name: 'ConfigError',
      message: `plugins (UIE_PLUGINS): invalid rule plugin module ${path}: its name "model" is the source of the model's own entities; give the plugin another name`,
    });
  });

  it('rejects an empty plugin name', async () => {
    const path = join(dir, 'unnamed.mjs');
    writeFileSync(
      path,
      "export default { name: '', labels: ['股票'], find: () => [] };\n",
    );
    await assert.rejects(loadPlugins([path]), {
      name: 'ConfigError',
      message: `plugins (UIE_PLUGINS): invalid rule plugin module ${path}: its name is empty; give the plugin a name, which becomes the "source" of its entities`,
    });
  });

  it('rejects a plugin without labels', async () => {
    const path = join(dir, 'unlabelled.mjs');
    writeFileSync(
      path,
      "export default { name: 'ticker', labels: [], find: () => [] };\n",
    );
    await assert.rejects(loadPlugins([path]), {
      name: 'ConfigError',
      message: `plugins (UIE_PLUGINS): invalid rule plugin module ${path}: its labels are empty, so it would never run; list the labels its spans carry`,
    });
  });

  it('rejects two plugins of one name', async () => {
    const path = join(dir, 'own-time.mjs');
    writeFileSync(
      path,
      "export default { name: 'time', labels: ['时间'], find: () => [] };\n",
    );
    await assert.rejects(loadPlugins(['time', path]), {
      name: 'ConfigError',
      message: `plugins (UIE_PLUGINS): two rule plugins are named "time" in time,${path}; list each plugin once and give a plugin of your own another name`,
    });
  });

  it('locates a syntax error', async () => {
    const path = join(dir, 'broken.mjs');
    writeFileSync(
      path,
      "export default {\n  name: 'broken',\n  find: () => [] },\n};\n",
    );
    await assert.rejects(loadPlugins([path]), {
      name: 'RangeError',
      message: `plugins (UIE_PLUGINS): cannot load rule plugin module ${path}: Unexpected token ',' at ${path}:3:19`,
    });
  });

  it('locates a CommonJS syntax error', async () => {
    const path = join(dir, 'broken.cjs');
    writeFileSync(path, "module.exports = {\n\tname: 'broken' x,\n};\n");
    await assert.rejects(loadPlugins([path]), {
      name: 'RangeError',
      message: `plugins (UIE_PLUGINS): cannot load rule plugin module ${path}: Unexpected identifier 'x' at ${path}:2:17`,
    });
  });

  it('names a syntax error in an import', async () => {
    const broken = join(dir, 'broken-helper.mjs');
    writeFileSync(broken, 'export const x = ;\n');
    const path = join(dir, 'imports-broken.mjs');
    writeFileSync(
      path,
      "import './broken-helper.mjs';\nexport default { name: 'a', labels: ['x'], find: () => [] };\n",
    );
    // node --check reads only the plugin's own file, which parses.
    await assert.rejects(loadPlugins([path]), {
      name: 'RangeError',
      message: `plugins (UIE_PLUGINS): cannot load rule plugin module ${path}: Unexpected token ';'`,
    });
  });

  it('names a module that fails to load', async () => {
    const path = join(dir, 'missing.mjs');
    await assert.rejects(loadPlugins([path]), (err: Error) => {
      assert.equal(err.name, 'RangeError');
      assert.ok(
        err.message.startsWith(
          `plugins (UIE_PLUGINS): cannot load rule plugin module ${path}: `,
        ),
        err.message,
      );
      return true;
    });
  });
});
