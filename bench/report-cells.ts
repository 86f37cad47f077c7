/** Table cells and rows of the bench report: durations, sizes and ratios. */
import type { Summary } from './stats.js';

// The end of the last job starts a poll of the job counts at once, and the
// worker stops when it finds the queue empty.
export const DRAIN_NOTE = 'includes one drain poll, a few ms';

/** measurement, median, min – max, note */
export type Row = [string, string, string, string];
/** ratio, value, note */
export type RatioRow = [string, string, string];

export function timed(name: string, s: Summary, note: string): Row {
  return [name, ms(s.median), range(s.runs), note];
}

export function bytes(name: string, s: Summary, note: string): Row {
  return [name, mib(s.median), `${mib(s.min)} – ${mib(s.max)}`, note];
}

export function skipped(name: string, reason: string): Row {
  return [name, reason, '', ''];
}

export function range(values: number[]): string {
  return `${ms(Math.min(...values))} – ${ms(Math.max(...values))}`;
}

export function ms(value: number): string {
  return value >= 10_000
    ? `${(value / 1000).toFixed(2)} s`
    : `${value.toFixed(1)} ms`;
}

export function mib(value: number): string {
  return `${(value / 2 ** 20).toFixed(1)} MiB`;
}

export function gflops(value: number): string {
  return `${value.toFixed(2)} GFLOP/s`;
}

export function times(value: number): string {
  return `${value.toFixed(2)}×`;
}

export function percent(value: number): string {
  return `${(value * 100).toFixed(1)} %`;
}

export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) =>
    Math.max(...all.map((row) => [...row[i]].length)),
  );
  const line = (row: string[]) =>
    '| ' +
    row
      .map((cell, i) => cell + ' '.repeat(widths[i] - [...cell].length))
      .join(' | ') +
    ' |';
  const rule = '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|';
  return [line(header), rule, ...rows.map(line)].join('\n');
}
