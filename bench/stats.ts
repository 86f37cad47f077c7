/** Median of a non-empty list; the mean of the middle two for an even count. */
export function median(values: number[]): number {
  if (values.length === 0)
    throw new RangeError('median: expected at least one value, got none');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[mid]
    : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median, minimum and maximum of repeated measurements. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function summarize(runs: number[]): Summary {
  return {
    median: median(runs),
    min: Math.min(...runs),
    max: Math.max(...runs),
    runs,
  };
}

/** Named lists of repeated measurements. */
export class Samples {
  private readonly values = new Map<string, number[]>();

  add(name: string, value: number): void {
    const list = this.values.get(name) ?? [];
    list.push(value);
    this.values.set(name, list);
  }

  /** Adds each numeric field of record under `prefix.field`. */
  addAll(prefix: string, record: object): void {
    for (const [key, value] of Object.entries(record)) {
      if (typeof value === 'number') this.add(`${prefix}.${key}`, value);
    }
  }

  /** @throws RangeError when nothing was recorded under name */
  summary(name: string): Summary {
    const list = this.values.get(name);
    if (!list) throw new RangeError(`no samples recorded for ${name}`);
    return summarize(list);
  }
}
