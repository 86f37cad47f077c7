/** Label names and values of one sample. */
export type Labels = Readonly<Record<string, string>>;

/** One sample line of a metric family. */
export interface Sample {
  /** Appended to the family name, such as `_bucket` of a histogram. */
  suffix?: string;
  labels?: Labels;
  value: number;
}

/** A metric family that the registry renders in the text format. */
export interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  /** Returns the samples. A rejection leaves the family out of a scrape. */
  collect(): Sample[] | Promise<Sample[]>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * A counter with a fixed set of label names, where each distinct set of
 * label values is its own series.
 */
export class Counter implements Metric {
  readonly type = 'counter';
  private readonly series = new Map<
    string,
    { labels: Labels; value: number }
  >();

  /**
   * @param labelNames - names every `inc` call must give a value for
   * @throws RangeError for an invalid metric or label name
   */
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[] = [],
  ) {
    checkMetricName(name);
    for (const label of labelNames) checkLabelName(label);
  }

  /**
   * Adds amount to the series of these labels, creating it at 0 first, so an
   * `inc(labels, 0)` makes a series visible before its first event.
   *
   * @throws RangeError for a negative amount, or labels other than the label
   * names
   */
  inc(labels: Labels = {}, amount = 1): void {
    if (!(amount >= 0)) {
      throw new RangeError(
        `${this.name}: expected an increment >= 0, got ${amount}`,
      );
    }
    const key = this.seriesKey(labels);
    const series = this.series.get(key) ?? { labels: { ...labels }, value: 0 };
    series.value += amount;
    this.series.set(key, series);
  }

  /** Returns the value of the series with these labels, 0 when it has none. */
  value(labels: Labels = {}): number {
    return this.series.get(this.seriesKey(labels))?.value ?? 0;
  }

  collect(): Sample[] {
    return [...this.series.values()].map(({ labels, value }) => ({
      labels,
      value,
    }));
  }

  private seriesKey(labels: Labels): string {
    const names = Object.keys(labels).sort();
    const expected = [...this.labelNames].sort();
    if (names.join(',') !== expected.join(',')) {
      throw new RangeError(
        `${this.name}: expected labels [${expected.join(', ')}], got [${names.join(', ')}]`,
      );
    }
    return JSON.stringify(expected.map((name) => labels[name]));
  }
}

/**
 * A gauge whose samples a callback reads at scrape time, so the value is
 * never stale and nothing has to update it in between.
 */
export class Gauge implements Metric {
  readonly type = 'gauge';

  /** @throws RangeError for an invalid metric name */
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => Sample[] | Promise<Sample[]>,
  ) {
    checkMetricName(name);
  }

  collect(): Sample[] | Promise<Sample[]> {
    return this.read();
  }
}

/** A histogram without labels, with cumulative `le` buckets. */
export class Histogram implements Metric {
  readonly type = 'histogram';
  private readonly bounds: readonly number[];
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  /**
   * @param bounds - increasing upper bounds of the buckets, to which `+Inf`
   * is added
   * @throws RangeError for an invalid name, or bounds that are not finite and
   * increasing
   */
  constructor(
    readonly name: string,
    readonly help: string,
    bounds: readonly number[],
  ) {
    checkMetricName(name);
    const increasing = bounds.every(
      (b, i) => Number.isFinite(b) && (i === 0 || b > bounds[i - 1]),
    );
    if (bounds.length === 0 || !increasing) {
      throw new RangeError(
        `${name}: expected finite, increasing bucket bounds, got [${bounds.join(', ')}]`,
      );
    }
    this.bounds = [...bounds];
    this.counts = bounds.map(() => 0);
  }

  /** Records one observation, such as a duration in seconds. */
  observe(value: number): void {
    const bucket = this.bounds.findIndex((bound) => value <= bound);
    if (bucket >= 0) this.counts[bucket]++;
    this.sum += value;
    this.count++;
  }

  collect(): Sample[] {
    let cumulative = 0;
    const buckets = this.bounds.map((bound, i) => {
      cumulative += this.counts[i];
      return bucketSample(bound, cumulative);
    });
    return [
      ...buckets,
      bucketSample(Number.POSITIVE_INFINITY, this.count),
      { suffix: '_sum', value: this.sum },
      { suffix: '_count', value: this.count },
    ];
  }
}

function bucketSample(bound: number, value: number): Sample {
  return { suffix: '_bucket', labels: { le: formatValue(bound) }, value };
}

/**
 * Metric families rendered together in the Prometheus text exposition
 * format 0.0.4.
 */
export class MetricsRegistry {
  /** Content type of the rendered text. */
  static readonly CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

  private readonly metrics = new Map<string, Metric>();

  /**
   * Adds a family and returns it.
   *
   * @throws RangeError when a family of that name is already registered
   */
  register<M extends Metric>(metric: M): M {
    if (this.metrics.has(metric.name)) {
      throw new RangeError(`metric ${metric.name} is already registered`);
    }
    this.metrics.set(metric.name, metric);
    return metric;
  }

  /**
   * Renders every family. A family whose samples cannot be read is left out
   * of this scrape and passed to onError, so one failing source does not
   * hide the others.
   */
  async render(
    onError: (name: string, err: unknown) => void = () => {},
  ): Promise<string> {
    const metrics = [...this.metrics.values()];
    const collected = await Promise.allSettled(
      metrics.map(async (metric) => metric.collect()),
    );
    const blocks: string[] = [];
    collected.forEach((result, i) => {
      if (result.status === 'fulfilled') {
        blocks.push(formatFamily(metrics[i], result.value));
      } else {
        onError(metrics[i].name, result.reason);
      }
    });
    return blocks.join('');
  }
}

/** Formats one family: HELP and TYPE lines, then one line per sample. */
export function formatFamily(metric: Metric, samples: Sample[]): string {
  const lines = [
    `# HELP ${metric.name} ${escapeHelp(metric.help)}`,
    `# TYPE ${metric.name} ${metric.type}`,
  ];
  for (const sample of samples) {
    const name = metric.name + (sample.suffix ?? '');
    lines.push(
      `${name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Formats a sample value; infinities and NaN use the format's spelling. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function formatLabels(labels: Labels | undefined): string {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return '';
  const pairs = entries.map(
    ([name, value]) => `${name}="${escapeLabelValue(value)}"`,
  );
  return `{${pairs.join(',')}}`;
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\n/g, '\\n');
}

function checkMetricName(name: string): void {
  if (!METRIC_NAME.test(name)) {
    throw new RangeError(
      `metric name: expected letters, digits, "_" or ":", not starting with a digit, got ${JSON.stringify(name)}`,
    );
  }
}

function checkLabelName(name: string): void {
  if (!LABEL_NAME.test(name) || name.startsWith('__')) {
    throw new RangeError(
      `label name: expected letters, digits or "_", not starting with a digit or "__", got ${JSON.stringify(name)}`,
    );
  }
}
