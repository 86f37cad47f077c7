import type { ChunkContext } from '../chunking/plan.js';
import { ModelError } from '../errors/errors.js';
import type { ExtractorModel } from '../model/load-model.js';
import type { ModelManifest } from '../model/model-folder.js';
import type {
  SharedTextBatch,
  SharedTextModel,
} from '../model/shared-text-model.js';
import type {
  PackedBatch,
  SpanModel,
  SpanProbabilities,
} from '../model/span-model.js';
import type { RulePlugin, RuleSpan } from '../rules/plugin.js';
import { findPluginSpans, hasPluginStack } from '../rules/plugin-spans.js';
import { decodeSpans, type ScoredSpan } from '../spans/decode.js';
import { snapSpanEdges } from '../spans/span-edges.js';
import type { Lexicon } from '../tokenizer/lexicon.js';
import {
  codePointIndex,
  countCodePoints,
  Tokenizer,
} from '../tokenizer/tokenizer.js';
import { dedupeEntities, type Entity } from './entity.js';
import {
  errorLine,
  type TextFailure,
  type TextOutcome,
} from './text-outcome.js';
import { NO_HOOKS, type TaskHooks } from './thread-control.js';

/** Settings of the extraction engine that runs inside each pool thread. */
export interface SpanExtractorOptions {
  /**
   * Minimum start and end probability of a span.
   * @defaultValue 0.5
   */
  threshold?: number;
  /**
   * Maximum size of one ONNX run, in tokens: rows × padded row length for
   * the packed graph, and texts × labels × padded text length for the
   * shared-text graph, whose per-label tensors have that many positions.
   * @defaultValue 4096
   */
  batchTokens?: number;
  /**
   * Dictionary words of the model folder; required when the model's graph
   * takes the `lexicon_bits` input, ignored otherwise.
   */
  lexicon?: Lexicon;
}

/** Prompt rows of a shared-text batch, packed once per call for every batch. */
type PromptRows = Pick<
  SharedTextBatch,
  'labels' | 'promptLen' | 'promptIds' | 'promptMask'
>;

/** Token ids of each text and, for lexicon models, its dictionary-match bits. */
interface Encoded {
  ids: Int32Array[];
  bits?: Int32Array[];
}

interface Pair {
  text: number;
  label: number;
  length: number;
}

/**
 * Packs, batches, runs and decodes (text, label) pairs for one model. The
 * packed UIE graph takes one `[CLS] prompt [SEP] text [SEP]` row per pair.
 * The shared-text graph takes one row per text and decodes every label of
 * the call from it. Both give the same spans.
 */
export class SpanExtractor {
  private readonly threshold: number;
  private readonly batchTokens: number;
  private readonly promptIds = new Map<string, Int32Array>();
  private readonly lexicon?: Lexicon;
  /** Labels whose model spans win over overlapping rule spans. */
  private readonly trained: ReadonlySet<string>;

  constructor(
    private readonly model: ExtractorModel,
    private readonly tokenizer: Tokenizer,
    private readonly manifest: ModelManifest,
    private readonly plugins: RulePlugin[],
    options: SpanExtractorOptions = {},
  ) {
    this.threshold = options.threshold ?? 0.5;
    this.batchTokens = options.batchTokens ?? 4096;
    this.trained = new Set(manifest.labels);
    if (model.needsLexicon) {
      if (!options.lexicon) {
        throw new ModelError(
          `model ${manifest.name} ${manifest.version} takes dictionary-match bits (lexicon_bits), ` +
            'but its model.json names no "lexicon" file',
        );
      }
      this.lexicon = options.lexicon;
    }
  }

  /** Returns the maximum text length, in code points, that fits beside the given prompts. */
  maxTextLength(schema: string[]): number {
    // NOTE: the shared-text graph has no packed row, but it keeps this limit
    // so that texts are chunked, and so decoded, the same with either graph.
    const longest = Math.max(...schema.map((l) => this.prompt(l).length));
    return this.manifest.max_seq_len - 3 - longest;
  }

  /**
   * Extracts the schema's labels from each text. A rule plugin that fails
   * on a text, by throwing or by returning an invalid span, fails only that
   * text: the other texts keep their entities.
   *
   * @param hooks - calls that let a pool stop the task between model runs
   * @returns one outcome per text: its entities, offsets relative to that
   *   text, or the error of the first plugin that failed on it
   * @throws RangeError when a text is too long for the model
   * @throws Error from hooks when the pool stopped the task
   * @throws the model's error when a model run fails
   */
  async extract(
    texts: string[],
    schema: string[],
    hooks: TaskHooks = NO_HOOKS,
    contexts: readonly (ChunkContext | undefined)[] = [],
  ): Promise<TextOutcome[]> {
    const modelLabels = schema.filter(
      (l) =>
        this.manifest.labels.includes(l) ||
        !this.plugins.some((p) => p.labels.includes(l)),
    );
    const found: Entity[][] = texts.map(() => []);
    const encoded = texts.map((t) => this.tokenizer.encode(t));
    const limit = this.maxTextLength(schema);
    for (const ids of encoded) {
      if (ids.length > limit) {
        throw new RangeError(
          `a chunk of ${ids.length} characters is too long: the model takes at most ${limit} beside the prompts. ` +
            'Chunks are cut when they are queued, so queue them with the model (modelDir) and chunk settings that the workers use',
        );
      }
    }

    if (modelLabels.length > 0) {
      const lexicon = this.lexicon;
      const bits = lexicon ? texts.map((t) => lexicon.bits(t)) : undefined;
      const input = { ids: encoded, bits };
      await this.runModel(texts, input, modelLabels, found, hooks);
    }
    const failures = this.runPlugins(texts, contexts, schema, found, hooks);
    return found.map((list, i): TextOutcome => {
      const failure = failures[i];
      if (failure) return failure;
      const length = encoded[i].length;
      return dedupeEntities(list, {
        modelLabel: (label) => this.trained.has(label),
        // A plugin span that runs past a window cut inside a sentence read
        // the window's context, which the model did not see.
        ruleWins: (e) => e.end > length,
      });
    });
  }

  private runModel(
    texts: string[],
    encoded: Encoded,
    labels: string[],
    found: Entity[][],
    hooks: TaskHooks,
  ): Promise<void> {
    const model = this.model;
    return model.graph === 'shared'
      ? this.runShared(model, texts, encoded, labels, found, hooks)
      : this.runPacked(model, texts, encoded, labels, found, hooks);
  }

  private async runPacked(
    model: SpanModel,
    texts: string[],
    encoded: Encoded,
    labels: string[],
    found: Entity[][],
    hooks: TaskHooks,
  ): Promise<void> {
    const pairs: Pair[] = [];
    encoded.ids.forEach((ids, t) => {
      if (ids.length === 0) return;
      labels.forEach((l, j) => {
        pairs.push({
          text: t,
          label: j,
          length: this.prompt(l).length + ids.length + 3,
        });
      });
    });
    // Similar lengths in one batch waste little on padding.
    pairs.sort((a, b) => a.length - b.length);
    const slicers = texts.map((t) => codePointIndex(t));

    for (const batch of this.batches(pairs, (pair) => pair.length)) {
      const packed = this.pack(batch, encoded, labels);
      const probs = await hooks.native(() => model.run(packed));
      batch.forEach((pair, r) => {
        const prompt = this.prompt(labels[pair.label]);
        // The text starts after [CLS], the prompt and [SEP].
        const offset = r * packed.seqLen + prompt.length + 2;
        const ids = encoded.ids[pair.text];
        const spans = this.decode(probs, offset, ids.length);
        const entities = this.toEntities(
          spans,
          labels[pair.label],
          slicers[pair.text],
        );
        found[pair.text].push(...entities);
      });
    }
  }

  private async runShared(
    model: SharedTextModel,
    texts: string[],
    encoded: Encoded,
    labels: string[],
    found: Entity[][],
    hooks: TaskHooks,
  ): Promise<void> {
    const ids = encoded.ids;
    const order = texts.map((_, t) => t).filter((t) => ids[t].length > 0);
    // Similar lengths in one batch waste little on padding.
    order.sort((a, b) => ids[a].length - ids[b].length);
    const prompts = this.packPrompts(labels);
    const slicers = texts.map((t) => codePointIndex(t));

    // Every label decodes the whole text row, its ids and [SEP], once.
    const rowCost = (t: number) => (ids[t].length + 1) * labels.length;
    for (const batch of this.batches(order, rowCost)) {
      const packed = this.packTexts(batch, encoded, prompts);
      const probs = await hooks.native(() => model.run(packed));
      batch.forEach((t, r) => {
        labels.forEach((label, j) => {
          const offset = (r * labels.length + j) * packed.seqLen;
          const spans = this.decode(probs, offset, ids[t].length);
          found[t].push(...this.toEntities(spans, label, slicers[t]));
        });
      });
    }
  }

  private decode(
    probs: SpanProbabilities,
    offset: number,
    length: number,
  ): ScoredSpan[] {
    return decodeSpans(probs.start, probs.end, offset, length, this.threshold);
  }

  private toEntities(
    spans: ScoredSpan[],
    label: string,
    slicer: ReturnType<typeof codePointIndex>,
  ): Entity[] {
    if (spans.length === 0) return [];
    return snapSpanEdges(spans, slicer.chars).map((s) => ({
      label,
      text: slicer.slice(s.start, s.end),
      start: s.start,
      end: s.end,
      score: Math.round(s.score * 1e4) / 1e4,
      source: 'model',
    }));
  }

  /**
   * Splits items, sorted by cost, into batches whose size, counted as the
   * newest item's cost times the batch length, stays within batchTokens. A
   * batch always takes at least one item.
   */
  private *batches<T>(items: T[], cost: (item: T) => number): Generator<T[]> {
    let batch: T[] = [];
    for (const item of items) {
      // Items are sorted by cost, so the newest item pads the whole batch.
      if (
        batch.length > 0 &&
        cost(item) * (batch.length + 1) > this.batchTokens
      ) {
        yield batch;
        batch = [];
      }
      batch.push(item);
    }
    if (batch.length > 0) yield batch;
  }

  private pack(batch: Pair[], encoded: Encoded, labels: string[]): PackedBatch {
    const seqLen = batch[batch.length - 1].length;
    const size = batch.length * seqLen;
    const inputIds = new BigInt64Array(size).fill(BigInt(this.tokenizer.pad));
    const tokenTypeIds = new BigInt64Array(size);
    const attentionMask = new BigInt64Array(size);
    const lexiconBits = encoded.bits ? new BigInt64Array(size) : undefined;
    batch.forEach((pair, r) => {
      const prompt = this.prompt(labels[pair.label]);
      const text = encoded.ids[pair.text];
      let p = r * seqLen;
      const bits = encoded.bits?.[pair.text];
      if (lexiconBits && bits) {
        // The text starts after [CLS], the prompt and [SEP].
        const first = p + prompt.length + 2;
        for (let i = 0; i < bits.length; i++) {
          lexiconBits[first + i] = BigInt(bits[i]);
        }
      }
      const put = (id: number, type: number) => {
        inputIds[p] = BigInt(id);
        tokenTypeIds[p] = BigInt(type);
        attentionMask[p] = 1n;
        p++;
      };
      put(this.tokenizer.cls, 0);
      for (const id of prompt) put(id, 0);
      put(this.tokenizer.sep, 0);
      for (const id of text) put(id, 1);
      put(this.tokenizer.sep, 1);
    });
    return {
      rows: batch.length,
      seqLen,
      inputIds,
      tokenTypeIds,
      attentionMask,
      ...(lexiconBits ? { lexiconBits } : {}),
    };
  }

  /** Packs `[CLS] prompt [SEP]` of each label once for every text batch. */
  private packPrompts(labels: string[]): PromptRows {
    const prompts = labels.map((l) => this.prompt(l));
    const promptLen = Math.max(...prompts.map((p) => p.length)) + 2;
    const size = labels.length * promptLen;
    const promptIds = new BigInt64Array(size).fill(BigInt(this.tokenizer.pad));
    const promptMask = new BigInt64Array(size);
    prompts.forEach((prompt, j) => {
      const row = [this.tokenizer.cls, ...prompt, this.tokenizer.sep];
      row.forEach((id, i) => {
        promptIds[j * promptLen + i] = BigInt(id);
        promptMask[j * promptLen + i] = 1n;
      });
    });
    return { labels: labels.length, promptLen, promptIds, promptMask };
  }

  /**
   * Packs each text as the text part of a packed row, its ids and the [SEP]
   * after them, so both graphs encode the same positions.
   */
  private packTexts(
    batch: number[],
    encoded: Encoded,
    prompts: PromptRows,
  ): SharedTextBatch {
    const seqLen = encoded.ids[batch[batch.length - 1]].length + 1;
    const size = batch.length * seqLen;
    const textIds = new BigInt64Array(size).fill(BigInt(this.tokenizer.pad));
    const textMask = new BigInt64Array(size);
    const lexiconBits = encoded.bits ? new BigInt64Array(size) : undefined;
    batch.forEach((t, r) => {
      const ids = encoded.ids[t];
      const row = r * seqLen;
      for (let i = 0; i < ids.length; i++) {
        textIds[row + i] = BigInt(ids[i]);
        textMask[row + i] = 1n;
      }
      const bits = encoded.bits?.[t];
      if (lexiconBits && bits) {
        for (let i = 0; i < bits.length; i++) {
          lexiconBits[row + i] = BigInt(bits[i]);
        }
      }
      textIds[row + ids.length] = BigInt(this.tokenizer.sep);
      textMask[row + ids.length] = 1n;
    });
    return {
      texts: batch.length,
      seqLen,
      textIds,
      textMask,
      ...prompts,
      ...(lexiconBits ? { lexiconBits } : {}),
    };
  }

  /**
   * Runs the rule plugins. A text with a context is read together with it.
   * Only spans that start in the text are kept, with offsets relative to
   * the text, and such a span may end after the text. A plugin that fails
   * on a text read with its context reads the text alone once more (see
   * {@link findInView}). Once a plugin fails on a text, no later plugin
   * reads that text.
   *
   * @returns the plugin failure of each text, undefined for a text on
   *   which every plugin succeeded
   * @throws Error from hooks when the pool stopped the task
   */
  private runPlugins(
    texts: string[],
    contexts: readonly (ChunkContext | undefined)[],
    schema: string[],
    found: Entity[][],
    hooks: TaskHooks,
  ): (TextFailure | undefined)[] {
    const failures: (TextFailure | undefined)[] = texts.map(() => undefined);
    // Built on first use, then shared by every plugin.
    let views: PluginView[] | undefined;
    for (const [index, plugin] of this.plugins.entries()) {
      const requested = plugin.labels.filter((l) => schema.includes(l));
      if (requested.length === 0) continue;
      hooks.step(index);
      views ??= texts.map((text, t) => pluginView(text, contexts[t]));
      views.forEach((view, t) => {
        if (failures[t]) return;
        const result = findInView(plugin, view, texts[t]);
        if ('error' in result) {
          failures[t] = result;
          return;
        }
        const { spans, slicer, shift, length } = result;
        for (const span of spans) {
          if (!requested.includes(span.label)) continue;
          if (span.start < shift || span.start >= shift + length) continue;
          found[t].push({
            label: span.label,
            text: slicer.slice(span.start, span.end),
            start: span.start - shift,
            end: span.end - shift,
            score: 1,
            source: plugin.name,
            ...(span.value !== undefined ? { value: span.value } : {}),
          });
        }
      });
    }
    return failures;
  }

  private prompt(label: string): Int32Array {
    let ids = this.promptIds.get(label);
    if (!ids) {
      ids = this.tokenizer.encode(label);
      this.promptIds.set(label, ids);
    }
    return ids;
  }
}

/** A text as rule plugins read it, with its context around it. */
interface PluginView {
  read: string;
  slicer: ReturnType<typeof codePointIndex>;
  /** Code points of context before the text. */
  shift: number;
  /** Code points of the text itself. */
  length: number;
}

/** Spans a plugin found, with the view of the text they are relative to. */
interface ViewSpans extends PluginView {
  spans: RuleSpan[];
}

/**
 * Runs a plugin on a text as its view shows it. When the plugin fails on a
 * text read with context, it reads the text alone, because the text that
 * made it fail may lie in the context. That text belongs to a neighbouring
 * window, which fails on its own when it contains it.
 *
 * @param text - the text of the view, without its context
 * @returns the spans and the view they are relative to, or the failure of
 *   the first read when the plugin fails on the text alone too
 */
function findInView(
  plugin: RulePlugin,
  view: PluginView,
  text: string,
): ViewSpans | TextFailure {
  try {
    return {
      ...view,
      spans: findPluginSpans(plugin, view.read, view.slicer.length),
    };
  } catch (err) {
    // A plugin must be pure, so it fails the same way on every run of this
    // text. The failure is the text's result, and a rerun would not help.
    const stack = hasPluginStack(err) ? err.stack : undefined;
    const failure = { error: errorLine(err), ...(stack ? { stack } : {}) };
    if (view.read === text) return failure;
    const alone = pluginView(text);
    try {
      return { ...alone, spans: findPluginSpans(plugin, text, alone.length) };
    } catch {
      return failure;
    }
  }
}

function pluginView(text: string, context?: ChunkContext): PluginView {
  if (!context) {
    const slicer = codePointIndex(text);
    return { read: text, slicer, shift: 0, length: slicer.length };
  }
  const read = context.before + text + context.after;
  return {
    read,
    slicer: codePointIndex(read),
    shift: countCodePoints(context.before),
    length: countCodePoints(text),
  };
}
