/** A labelled span in code points, end exclusive. */
export interface LabelledSpan {
  start: number;
  end: number;
  label: string;
}

/**
 * Span counts with exact-match precision, recall and F1. A ratio whose
 * denominator is 0 is 0.
 */
export interface SpanScore {
  /** Gold spans. */
  gold: number;
  /** Predicted spans. */
  predicted: number;
  /** Predicted spans with the same start, end and label as a gold span. */
  correct: number;
  precision: number;
  recall: number;
  f1: number;
}

/** The score of one label. */
export interface LabelScore extends SpanScore {
  label: string;
}

/** Scores per label, in the order the labels were given, and overall. */
export interface ScoreReport {
  labels: LabelScore[];
  /** Micro average: the counts of every label summed, then scored. */
  overall: SpanScore;
}

/** The counts a score is computed from. */
export type SpanCounts = Pick<SpanScore, 'gold' | 'predicted' | 'correct'>;

/**
 * Accumulates exact-span matches sentence by sentence. Spans of labels
 * outside the scored set are ignored, on both sides, and a sentence counts
 * a repeated (start, end, label) once.
 *
 * @example
 * const scorer = new SpanScorer(['人物', '地点']);
 * scorer.add(goldSpans, predictedEntities);
 * console.log(scorer.report().overall.f1);
 */
export class SpanScorer {
  private readonly counts = new Map<string, SpanCounts>();

  /**
   * @param labels labels to score
   * @throws RangeError when labels is empty
   */
  constructor(labels: readonly string[]) {
    if (labels.length === 0) {
      throw new RangeError('labels: expected at least one label, got none');
    }
    for (const label of labels) {
      this.counts.set(label, { gold: 0, predicted: 0, correct: 0 });
    }
  }

  /** Adds the gold and predicted spans of one sentence. */
  add(gold: readonly LabelledSpan[], predicted: readonly LabelledSpan[]): void {
    const goldKeys = this.keysOf(gold);
    const predictedKeys = this.keysOf(predicted);
    for (const [key, counts] of goldKeys) {
      counts.gold++;
      if (predictedKeys.has(key)) counts.correct++;
    }
    for (const counts of predictedKeys.values()) counts.predicted++;
  }

  /** Returns the scores of the sentences added so far. */
  report(): ScoreReport {
    const total: SpanCounts = { gold: 0, predicted: 0, correct: 0 };
    const labels: LabelScore[] = [];
    for (const [label, counts] of this.counts) {
      labels.push({ label, ...scoreCounts(counts) });
      total.gold += counts.gold;
      total.predicted += counts.predicted;
      total.correct += counts.correct;
    }
    return { labels, overall: scoreCounts(total) };
  }

  /** Maps each distinct scored span to the counts of its label. */
  private keysOf(spans: readonly LabelledSpan[]): Map<string, SpanCounts> {
    const keys = new Map<string, SpanCounts>();
    for (const span of spans) {
      const counts = this.counts.get(span.label);
      if (counts) keys.set(`${span.start}:${span.end}:${span.label}`, counts);
    }
    return keys;
  }
}

/**
 * Computes precision, recall and F1 from span counts.
 *
 * @example
 * scoreCounts({ gold: 4, predicted: 2, correct: 1 }); // P 0.5, R 0.25
 */
export function scoreCounts(counts: SpanCounts): SpanScore {
  const { gold, predicted, correct } = counts;
  const precision = predicted > 0 ? correct / predicted : 0;
  const recall = gold > 0 ? correct / gold : 0;
  const sum = precision + recall;
  const f1 = sum > 0 ? (2 * precision * recall) / sum : 0;
  return { gold, predicted, correct, precision, recall, f1 };
}
