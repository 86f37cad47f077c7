import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { localDate } from '../src/cli/commands.js';
import { deletePrefix, runCli, tempDir, uniquePrefix } from './helpers.js';

/** Returns the date of `now` in a time zone as YYYY-MM-DD. */
function dateIn(timeZone: string, now: Date): string {
  // The en-CA locale writes dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', { timeZone }).format(now);
}

/**
 * Returns a time zone whose date differs from the UTC date now. UTC+14 is
 * a day ahead from 10:00 UTC on and UTC-12 a day behind until 12:00 UTC.
 */
function zoneOffTheUtcDate(now: Date): string {
  const ahead = 'Etc/GMT-14';
  return dateIn(ahead, now) !== dateIn('UTC', now) ? ahead : 'Etc/GMT+12';
}

describe('when enqueue gets no --run', () => {
  const dir = tempDir('producer-run-name');
  const prefix = uniquePrefix('producer-run-name');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: join(dir, 'results') };

  after(() => deletePrefix(prefix));

  it('uses the local date', async () => {
    const csv = join(dir, 'docs.csv');
    writeFileSync(csv, 'id,text\n1,张三在北京。\n');
    const before = new Date();
    const zone = zoneOffTheUtcDate(before);

    const result = await runCli(['enqueue', csv], { ...env, TZ: zone });

    assert.equal(result.code, 0, result.stderr);
    // The date may turn while the command runs.
    const dates = [dateIn(zone, before), dateIn(zone, new Date())];
    const run = /^run (\S+): /m.exec(result.stderr)?.[1];
    assert.ok(run, result.stderr);
    assert.ok(dates.includes(run), `${result.stderr} in ${zone}`);
    assert.notEqual(run, before.toISOString().slice(0, 10));
    assert.ok(
      result.stderr.includes(
        `no --run given, so the run is named ${run}, the date today at time zone ${zone} (UTC`,
      ),
      result.stderr,
    );
    assert.match(
      result.stderr,
      /\(UTC[+-]\d\d:\d\d\); pass --run \S+ to status and export\n/,
    );
  });

  it('prints no notice with --run', async () => {
    const csv = join(dir, 'named.csv');
    writeFileSync(csv, 'id,text\n1,李四在上海。\n');
    const result = await runCli(['enqueue', csv, '--run', 'named'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /^run named: 1 documents/m);
    assert.equal(result.stdout, '');
    assert.doesNotMatch(result.stderr, /no --run given/);
  });
});

describe('localDate', () => {
  it('gives the local calendar date', () => {
    assert.equal(localDate(new Date(2026, 11, 4, 2, 0)), '2026-12-04');
    assert.equal(localDate(new Date(2026, 0, 31, 23, 59)), '2026-01-31');
  });
});
