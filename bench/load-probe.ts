/**
 * Child process of the bench: loads one model as a pool thread does,
 * extracts from the sentences and prints its load time, loop time and
 * resident memory as one JSON line on stdout.
 *
 * Usage: node dist/bench/load-probe.js MODEL_DIR SENTENCES.json SCHEMA
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

import { loadSettings } from '../src/config/config.js';
import { SpanExtractor } from '../src/engine/span-extractor.js';
import { loadExtractorModel } from '../src/model/load-model.js';
import { readModelFolder } from '../src/model/model-folder.js';
import { loadPlugins } from '../src/rules/registry.js';
import { loadLexicon } from '../src/tokenizer/lexicon.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';

/** Output of the probe; memory in bytes, time in milliseconds. */
export interface ProbeResult {
  /** RSS after Node.js and the onnxruntime-node binding are loaded. */
  rssBefore: number;
  /**
   * RSS after loading the graph a pool thread loads (the shared-text graph
   * when the folder has one) and Tokenizer.fromFile.
   */
  rssLoaded: number;
  /** Peak RSS of the process after extracting from the sentences. */
  maxRss: number;
  loadMs: number;
  /** Time of the extract() loop over the sentences, after the model load. */
  loopMs: number;
  sentences: number;
}

/** Texts per extract() call, as the extract command sends to a thread. */
const GROUP_SIZE = 32;

async function main(): Promise<void> {
  const [modelDir, sentencesPath, schemaList] = process.argv.slice(2);
  if (!modelDir || !sentencesPath || !schemaList) {
    throw new TypeError('usage: load-probe.js MODEL_DIR SENTENCES.json SCHEMA');
  }
  const sentences = JSON.parse(readFileSync(sentencesPath, 'utf8')) as string[];
  const schema = schemaList.split(',');
  const settings = loadSettings({ modelDir });
  const folder = readModelFolder(modelDir, false);
  const rssBefore = process.memoryUsage().rss;

  const started = performance.now();
  const model = await loadExtractorModel(folder, { intraOpThreads: 1 });
  const tokenizer = Tokenizer.fromFile(folder.vocabPath);
  const lexicon = loadLexicon(folder);
  const loadMs = performance.now() - started;
  const rssLoaded = process.memoryUsage().rss;

  const plugins = await loadPlugins(settings.plugins);
  const extractor = new SpanExtractor(
    model,
    tokenizer,
    folder.manifest,
    plugins,
    {
      threshold: settings.threshold,
      batchTokens: settings.batchTokens,
      lexicon,
    },
  );
  const loopStarted = performance.now();
  for (let i = 0; i < sentences.length; i += GROUP_SIZE) {
    await extractor.extract(sentences.slice(i, i + GROUP_SIZE), schema);
  }
  const loopMs = performance.now() - loopStarted;
  const maxRss = peakRss();
  await model.release();

  const result: ProbeResult = {
    rssBefore,
    rssLoaded,
    maxRss,
    loadMs,
    loopMs,
    sentences: sentences.length,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

/**
 * Returns the peak resident memory of this process in bytes. On Linux,
 * getrusage's maxRSS survives execve, so a child spawned by a large bench
 * process would report the bench's own peak; VmHWM in /proc/self/status
 * belongs to the new program alone.
 */
function peakRss(): number {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    if (match) return Number(match[1]) * 1024;
  } catch {
    // Not Linux: fall back to getrusage, which is in kilobytes.
  }
  return process.resourceUsage().maxRSS * 1024;
}

main().catch((err: unknown) => {
  process.stderr.write(
    `load probe failed: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exitCode = 1;
});
