import type { ModelManifest } from '../model/model-folder.js';
import type { PackedBatch, SpanModel } from '../model/span-model.js';
import type { RulePlugin } from '../rules/plugin.js';
import { decodeSpans } from '../spans/decode.js';
import { codePointIndex, Tokenizer } from '../tokenizer/tokenizer.js';
import { dedupeEntities, type Entity } from './entity.js';

/** Settings of the extraction engine that runs inside each pool thread. */
export interface SpanExtractorOptions {
  /**
   * Minimum start and end probability of a span.
   * @defaultValue 0.5
   */
  threshold?: number;
  /**
   * Maximum rows × padded length of one ONNX run, in tokens.
   * @defaultValue 4096
   */
  batchTokens?: number;
}

interface Pair {
  text: number;
  label: number;
  length: number;
}

/** Packs, batches, runs and decodes (text, label) pairs for one model. */
export class SpanExtractor {
  private readonly threshold: number;
  private readonly batchTokens: number;
  private readonly promptIds = new Map<string, Int32Array>();

  constructor(
    private readonly model: SpanModel,
    private readonly tokenizer: Tokenizer,
    private readonly manifest: ModelManifest,
    private readonly plugins: RulePlugin[],
    options: SpanExtractorOptions = {},
  ) {
    this.threshold = options.threshold ?? 0.5;
    this.batchTokens = options.batchTokens ?? 4096;
  }

  /** Returns the maximum text length, in code points, that fits beside the given prompts. */
  maxTextLength(schema: string[]): number {
    const longest = Math.max(...schema.map((l) => this.prompt(l).length));
    return this.manifest.max_seq_len - 3 - longest;
  }

  /**
   * Extracts the schema's labels from each text.
   *
   * @returns one entity list per text, offsets relative to that text
   * @throws RangeError when a text is too long for the model
   */
  async extract(texts: string[], schema: string[]): Promise<Entity[][]> {
    const modelLabels = schema.filter(
      (l) =>
        this.manifest.labels.includes(l) ||
        !this.plugins.some((p) => p.labels.includes(l)),
    );
    const found: Entity[][] = texts.map(() => []);
    const encoded = texts.map((t) => this.tokenizer.encode(t));
    const limit = this.maxTextLength(schema);
    encoded.forEach((ids, i) => {
      if (ids.length > limit) {
        throw new RangeError(
          `text ${i} has ${ids.length} characters; the model takes at most ${limit} beside the prompts`,
        );
      }
    });

    if (modelLabels.length > 0) {
      await this.runModel(texts, encoded, modelLabels, found);
    }
    this.runPlugins(texts, schema, found);
    return found.map((list) => dedupeEntities(list));
  }

  private async runModel(
    texts: string[],
    encoded: Int32Array[],
    labels: string[],
    found: Entity[][],
  ): Promise<void> {
    const pairs: Pair[] = [];
    encoded.forEach((ids, t) => {
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

    for (const batch of this.batches(pairs)) {
      const packed = this.pack(batch, encoded, labels);
      const probs = await this.model.run(packed);
      batch.forEach((pair, r) => {
        const prompt = this.prompt(labels[pair.label]);
        const offset = r * packed.seqLen + prompt.length + 2;
        const spans = decodeSpans(
          probs.start,
          probs.end,
          offset,
          encoded[pair.text].length,
          this.threshold,
        );
        for (const s of spans) {
          found[pair.text].push({
            label: labels[pair.label],
            text: slicers[pair.text].slice(s.start, s.end),
            start: s.start,
            end: s.end,
            score: Math.round(s.score * 1e4) / 1e4,
            source: 'model',
          });
        }
      });
    }
  }

  private *batches(pairs: Pair[]): Generator<Pair[]> {
    let batch: Pair[] = [];
    for (const pair of pairs) {
      // Pairs are sorted by length, so the newest pair is the longest.
      if (
        batch.length > 0 &&
        pair.length * (batch.length + 1) > this.batchTokens
      ) {
        yield batch;
        batch = [];
      }
      batch.push(pair);
    }
    if (batch.length > 0) yield batch;
  }

  private pack(
    batch: Pair[],
    encoded: Int32Array[],
    labels: string[],
  ): PackedBatch {
    const seqLen = batch[batch.length - 1].length;
    const size = batch.length * seqLen;
    const inputIds = new BigInt64Array(size).fill(BigInt(this.tokenizer.pad));
    const tokenTypeIds = new BigInt64Array(size);
    const attentionMask = new BigInt64Array(size);
    batch.forEach((pair, r) => {
      const prompt = this.prompt(labels[pair.label]);
      const text = encoded[pair.text];
      let p = r * seqLen;
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
    };
  }

  private runPlugins(
    texts: string[],
    schema: string[],
    found: Entity[][],
  ): void {
    for (const plugin of this.plugins) {
      const requested = plugin.labels.filter((l) => schema.includes(l));
      if (requested.length === 0) continue;
      texts.forEach((text, t) => {
        const slicer = codePointIndex(text);
        for (const span of plugin.find(text)) {
          if (!requested.includes(span.label)) continue;
          found[t].push({
            label: span.label,
            text: slicer.slice(span.start, span.end),
            start: span.start,
            end: span.end,
            score: 1,
            source: plugin.name,
            ...(span.value !== undefined ? { value: span.value } : {}),
          });
        }
      });
    }
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
