import type { Logger } from 'pino';

import { chunkTask, planChunks, type PlannedChunk } from '../chunking/plan.js';
import {
  PluginStackLog,
  type TextFailure,
  type TextOutcome,
} from '../engine/text-outcome.js';
import { failsEveryAttempt } from '../errors/errors.js';
import { mergeChunks, type ChunkEntities } from '../output/document-line.js';
import type { Engine } from '../pipeline/engine.js';
import type { GoldSentence } from './gold-readers.js';
import type { SpanScorer } from './score.js';

// Gold sentences are short, so a task carries many of them to keep the
// cost of sending a message to a pool thread small next to inference.
const SENTENCES_PER_TASK = 64;

/** A gold sentence whose extraction failed, scored as finding nothing. */
export interface FailedSentence {
  /** Line of the gold file where the sentence starts. */
  line: number;
  message: string;
}

/** Counts of the sentences an evaluation scored. */
export interface EvaluationSummary {
  sentences: number;
  /** Code points of all sentence texts. */
  characters: number;
  /**
   * Sentences whose extraction failed on every attempt or in a rule plugin,
   * in line order.
   */
  failed: FailedSentence[];
}

/**
 * Runs gold sentences through the engine the way extract runs documents,
 * with the same chunking, pool, rule plugins and merging, and adds each
 * sentence's gold and predicted spans to the scorer. Several tasks run at
 * once, so sentences are scored out of order. A sentence on which a rule
 * plugin fails is scored as finding nothing and listed in `failed`, and the
 * other sentences of its task keep their entities. When a task fails on
 * every attempt (settings.attempts), its sentences run one by one, and a
 * sentence that fails alone is scored and listed the same way. A task that
 * timed out inside a rule plugin, or contains a chunk too long for the model,
 * is split at once, because a retry would fail the same way. The stack of
 * a rule plugin's throw is logged as extract logs it.
 *
 * @param onScored called with the number of sentences of each finished task
 * @throws the error of the sentence reader
 */
export async function evaluateSentences(
  engine: Engine,
  sentences: AsyncIterable<GoldSentence>,
  scorer: SpanScorer,
  log: Logger,
  onScored?: (count: number) => void,
): Promise<EvaluationSummary> {
  // Two tasks per thread, so that the next task of a thread waits in the
  // pool queue while the current one runs.
  const maxRunning = engine.pool.threads * 2;
  const running = new Set<Promise<void>>();
  const summary: EvaluationSummary = {
    sentences: 0,
    characters: 0,
    failed: [],
  };
  let failure: unknown;
  let batch: GoldSentence[] = [];
  const pluginStacks = new PluginStackLog(log);

  const submit = () => {
    const submitted = batch;
    batch = [];
    const task: Promise<void> = predictOrSplit(
      engine,
      submitted,
      log,
      pluginStacks,
    )
      .then((predictions) => {
        submitted.forEach((s, i) => {
          const predicted = predictions[i];
          if (Array.isArray(predicted)) {
            scorer.add(s.spans, predicted);
          } else {
            summary.failed.push({ line: s.line, message: predicted.error });
            scorer.add(s.spans, []);
          }
        });
        onScored?.(submitted.length);
      })
      // Kept for the caller, so that no task's rejection goes unhandled.
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(() => running.delete(task));
    running.add(task);
  };

  for await (const sentence of sentences) {
    summary.sentences++;
    summary.characters += [...sentence.text].length;
    batch.push(sentence);
    if (batch.length < SENTENCES_PER_TASK) continue;
    submit();
    while (running.size >= maxRunning) await Promise.race(running);
    if (failure !== undefined) throw failure;
  }
  if (batch.length > 0) submit();
  await Promise.all(running);
  if (failure !== undefined) throw failure;
  summary.failed.sort((a, b) => a.line - b.line);
  return summary;
}

/**
 * Returns the entities of each sentence, or for a batch that failed, runs
 * its sentences one by one so that one bad sentence costs only itself.
 * A sentence that fails alone, or on which a rule plugin fails, gets its
 * error in place of entities.
 */
async function predictOrSplit(
  engine: Engine,
  batch: GoldSentence[],
  log: Logger,
  pluginStacks: PluginStackLog,
): Promise<TextOutcome[]> {
  try {
    return await predictBatch(engine, batch, log, pluginStacks);
  } catch (err) {
    if (batch.length === 1) {
      return [{ error: err instanceof Error ? err.message : String(err) }];
    }
    log.warn(
      { err, fromLine: batch[0].line, toLine: batch.at(-1)?.line },
      'extraction failed for a task of gold sentences; running them one by one',
    );
    const single = await Promise.all(
      batch.map((s) => predictOrSplit(engine, [s], log, pluginStacks)),
    );
    return single.flat();
  }
}

/**
 * Returns the merged entities of each sentence, in code points, or the
 * first rule plugin failure on one of its chunks.
 */
async function predictBatch(
  engine: Engine,
  batch: GoldSentence[],
  log: Logger,
  pluginStacks: PluginStackLog,
): Promise<TextOutcome[]> {
  const overlap = engine.settings.chunkOverlap;
  const plans = batch.map((s) =>
    planChunks(s.text, engine.chunkLength, overlap),
  );
  const results = await runTask(engine, plans.flat(), batch, log);
  // The failures below keep only the message, so the stack is logged here.
  pluginStacks.note(results);

  let next = 0;
  return plans.map((chunks, i): TextOutcome => {
    const outcomes = results.slice(next, next + chunks.length);
    next += chunks.length;
    const parts: ChunkEntities[] = [];
    for (const [k, outcome] of outcomes.entries()) {
      if (!Array.isArray(outcome)) {
        return sentenceFailure(outcome, batch[i].line);
      }
      parts.push({ range: chunks[k].range, entities: outcome });
    }
    return mergeChunks('', parts).entities;
  });
}

/**
 * Names the gold sentence in a rule plugin's failure on it, as the error of
 * a sentence whose task failed names its lines.
 */
function sentenceFailure(failure: TextFailure, line: number): TextFailure {
  return {
    error: `extraction failed for the gold sentence on line ${line}: ${failure.error}`,
  };
}

async function runTask(
  engine: Engine,
  chunks: PlannedChunk[],
  batch: GoldSentence[],
  log: Logger,
): Promise<TextOutcome[]> {
  const { attempts, schema } = engine.settings;
  const lines = { fromLine: batch[0].line, toLine: batch.at(-1)?.line };
  for (let attempt = 1; ; attempt++) {
    try {
      return await engine.pool.run(chunkTask(chunks, schema));
    } catch (err) {
      if (attempt >= attempts || failsEveryAttempt(err)) {
        const message = err instanceof Error ? err.message : String(err);
        // Such a failure is not retried, so attempts would mislead.
        const tried = failsEveryAttempt(err)
          ? 'extraction failed'
          : `extraction failed on attempt ${attempt} of ${attempts}`;
        const where =
          lines.fromLine === lines.toLine
            ? `the gold sentence on line ${lines.fromLine}`
            : `the gold sentences on lines ${lines.fromLine} to ${lines.toLine}`;
        throw new Error(`${tried} for ${where}: ${message}`, { cause: err });
      }
      log.warn(
        { err, attempt, attempts, ...lines },
        'extraction task failed; retrying',
      );
    }
  }
}
