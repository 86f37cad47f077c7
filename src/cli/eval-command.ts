import type { Logger } from 'pino';

import type { Settings } from '../config/config.js';
import { InputError } from '../errors/errors.js';
import { evaluateSentences, type EvaluationSummary } from '../eval/evaluate.js';
import {
  GOLD_FORMATS,
  readGold,
  type GoldFormat,
  type GoldReaderOptions,
} from '../eval/gold-readers.js';
import { parseLabelMap } from '../eval/label-map.js';
import { SpanScorer, type ScoreReport, type SpanScore } from '../eval/score.js';
import { startEngine } from '../pipeline/engine.js';
import { Progress } from '../pipeline/progress.js';
import { requiredOption, type Invocation } from './main.js';

/**
 * Scores the engine against a labelled file: exact-span precision, recall
 * and F1 per label and overall, printed as a table or as one JSON object.
 *
 * @throws InputError for an unreadable gold file or an invalid line in it,
 *   RangeError for an invalid option value
 */
export async function evalCommand(
  inv: Invocation,
  settings: Settings,
  log: Logger,
): Promise<number> {
  if (inv.positionals.length > 0) {
    throw new RangeError(
      `eval: unexpected argument "${inv.positionals[0]}"; pass the gold ` +
        `file with --gold. Usage: ${inv.command.usage}`,
    );
  }
  const gold = requiredOption(inv, 'gold');
  const format = formatOption(requiredOption(inv, 'format'));
  const labelMap = parseLabelMap(stringOption(inv, 'map'));
  const reader: GoldReaderOptions = {
    labels: labelMap,
    encoding: stringOption(inv, 'encoding'),
    limit: limitOption(stringOption(inv, 'limit')),
  };

  // A first pass collects the labels to score and finds an invalid line
  // before the model loads, not after inference on every line before it.
  const survey = await surveyGold(gold, format, reader);
  const labels =
    inv.values.schema !== undefined
      ? settings.schema
      : [...new Set(labelMap.values())].filter((l) => survey.labels.has(l));
  if (labels.length === 0) throw noLabelsError(gold, reader.limit);
  const unscored = labels.filter((l) => !survey.labels.has(l));
  if (unscored.length > 0) {
    log.warn(
      { gold, labels: unscored },
      'no gold span has these schema labels, so their recall cannot be scored; check --map',
    );
  }

  const engine = await startEngine({ ...settings, schema: labels }, log, {
    cutsChunks: true,
  });
  const scorer = new SpanScorer(labels);
  const progress = new Progress(
    log,
    'sentences',
    settings.progressSeconds,
    survey.sentences,
  );
  const started = Date.now();
  let summary: EvaluationSummary;
  try {
    summary = await evaluateSentences(
      engine,
      readGold(gold, format, reader),
      scorer,
      log,
      (count) => {
        progress.add(count);
        progress.setFraction(progress.count / survey.sentences);
      },
    );
  } finally {
    progress.stop();
    await engine.pool.close();
  }
  const seconds = (Date.now() - started) / 1000;

  const report = scorer.report();
  log.info({ gold, format, ...summary, seconds }, 'eval finished');
  const failedSentences = summary.failed.length;
  if (inv.values.json) {
    const result = {
      gold,
      format,
      ...summary,
      failedSentences,
      seconds,
      ...report,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    process.stdout.write(
      formatScoreTable(report, {
        sentences: summary.sentences,
        failed: failedSentences,
      }),
    );
  }
  process.stderr.write(
    `${summary.sentences} sentences (${summary.characters} characters) ` +
      `of ${gold} scored in ${seconds.toFixed(1)} s\n`,
  );
  if (summary.failed.length === 0) return 0;

  for (const { line, message } of summary.failed) {
    log.error(
      { gold, line, error: message },
      'extraction failed for a gold sentence',
    );
  }
  const lines = summary.failed.map((f) => f.line);
  const listed =
    lines.slice(0, 10).join(', ') + (lines.length > 10 ? ', …' : '');
  process.stderr.write(
    `uie-batch: extraction failed for ${lines.length} of ${summary.sentences} ` +
      `sentences of ${gold} (lines ${listed}); they were scored as finding ` +
      `nothing, so the scores above are too low. The log names each error.\n`,
  );
  return 1;
}

function stringOption(inv: Invocation, name: string): string | undefined {
  const value = inv.values[name];
  return typeof value === 'string' ? value : undefined;
}

function formatOption(value: string): GoldFormat {
  const format = GOLD_FORMATS.find((f) => f === value);
  if (format === undefined) {
    throw new RangeError(
      `--format: expected one of ${GOLD_FORMATS.join(', ')}, got "${value}"`,
    );
  }
  return format;
}

function limitOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const limit = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(
      `--limit: expected an integer >= 1 (sentences), got "${value}"`,
    );
  }
  return limit;
}

/** Counts the sentences and collects the labels of their gold spans. */
async function surveyGold(
  gold: string,
  format: GoldFormat,
  reader: GoldReaderOptions,
): Promise<{ sentences: number; labels: Set<string> }> {
  const labels = new Set<string>();
  let sentences = 0;
  for await (const sentence of readGold(gold, format, reader)) {
    sentences++;
    for (const span of sentence.spans) labels.add(span.label);
  }
  return { sentences, labels };
}

function noLabelsError(gold: string, limit: number | undefined): InputError {
  const where =
    limit === undefined
      ? 'the file'
      : limit === 1
        ? 'the first sentence'
        : `the first ${limit} sentences`;
  return new InputError(
    `${gold}: no span in ${where} has a tag in the label map, so there is ` +
      `nothing to score; map the file's tags with --map TAG=LABEL, or ` +
      `choose the labels with --schema`,
  );
}

/**
 * Formats a report as a text table: one row per label, then the overall
 * row, with P, R and F1 as fractions from 0 to 1. When some sentences
 * failed, a line after the table counts them, because they were scored as
 * finding nothing and so lower the scores.
 *
 * @param counts - sentences scored, and how many of them failed
 */
export function formatScoreTable(
  report: ScoreReport,
  counts: { sentences: number; failed: number } = { sentences: 0, failed: 0 },
): string {
  const header = ['label', 'gold', 'predicted', 'correct', 'P', 'R', 'F1'];
  const row = (label: string, score: SpanScore) => [
    label,
    String(score.gold),
    String(score.predicted),
    String(score.correct),
    score.precision.toFixed(4),
    score.recall.toFixed(4),
    score.f1.toFixed(4),
  ];
  const rows = [
    header,
    ...report.labels.map((s) => row(s.label, s)),
    row('overall', report.overall),
  ];

  const widths = header.map((_, column) =>
    Math.max(...rows.map((cells) => displayWidth(cells[column]))),
  );
  const lines = rows.map((cells) =>
    cells
      .map((cell, column) => {
        const padding = ' '.repeat(widths[column] - displayWidth(cell));
        // The label column is text, so it aligns left; numbers align right.
        return column === 0 ? cell + padding : padding + cell;
      })
      .join('  '),
  );
  if (counts.failed > 0) {
    lines.push(
      `failed: ${counts.failed} of ${counts.sentences} sentences, ` +
        'scored as finding nothing',
    );
  }
  return lines.join('\n') + '\n';
}

// Han characters, kana, Hangul and full-width forms take two terminal
// columns, so Chinese labels need half the padding of Latin ones.
const WIDE = new RegExp(
  '[\\u1100-\\u115f\\u2e80-\\ua4cf\\uac00-\\ud7a3\\uf900-\\ufaff' +
    '\\ufe30-\\ufe4f\\uff00-\\uff60\\uffe0-\\uffe6]',
);

function displayWidth(text: string): number {
  let width = 0;
  for (const char of text) width += WIDE.test(char) ? 2 : 1;
  return width;
}
