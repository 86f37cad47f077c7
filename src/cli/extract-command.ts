import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';

import type { Logger } from 'pino';

import type { Settings } from '../config/config.js';
import { InputError } from '../errors/errors.js';
import {
  resolveOutputTarget,
  wroteTo,
  type OutputTarget,
} from '../output/output-file.js';
import { startEngine } from '../pipeline/engine.js';
import { extractFile } from '../pipeline/extract-file.js';
import {
  checkInput,
  inputName,
  type CsvSourceOptions,
} from '../producer/csv-source.js';
import { isStandardInput } from '../producer/open-input.js';
import { exitOnInterrupt } from './interrupts.js';
import {
  onePositional,
  outputName,
  requiredOption,
  type Invocation,
} from './main.js';

// This module contains the one command that runs without Redis. It imports
// nothing of BullMQ or ioredis, whose loading takes about 0.2 s of every start.

export function csvOptions(inv: Invocation): CsvSourceOptions {
  const v = inv.values;
  return {
    idColumn: typeof v['id-column'] === 'string' ? v['id-column'] : undefined,
    idColumnExplicit: typeof v['id-column'] === 'string',
    textColumn:
      typeof v['text-column'] === 'string' ? v['text-column'] : undefined,
    encoding: typeof v.encoding === 'string' ? v.encoding : undefined,
    delimiter: typeof v.delimiter === 'string' ? v.delimiter : undefined,
  };
}

/**
 * Returns the rejects file path of an extract: out.jsonl -> out.rejects.jsonl
 * beside a regular output file. Standard output, a FIFO or a device has no
 * folder of its own, and no rejects file goes under /dev. In those cases the
 * path is corpus.csv or corpus.csv.gz -> corpus.rejects.jsonl in the
 * working directory, and stdin.rejects.jsonl for standard input.
 *
 * @throws InputError when that working directory is under /dev
 */
export function rejectsPathFor(
  output: string,
  input: string,
  target: OutputTarget,
): string {
  if (target.kind === 'file') {
    const name = basename(output).replace(/\.jsonl?$/i, '');
    const beside = join(dirname(output), `${name}.rejects.jsonl`);
    if (!isUnderDev(dirname(resolve(output)))) return beside;
  }
  if (isUnderDev(process.cwd())) {
    throw new InputError(
      `the rejects file of -o ${output} would go to the working directory ${process.cwd()}, which is under /dev; pass --rejects FILE or run uie-batch from another folder`,
    );
  }
  // corpus.csv.gz gives corpus too: the compression is not part of the name.
  const plain = basename(input).replace(/\.gz$/i, '');
  const name = isStandardInput(input)
    ? 'stdin'
    : basename(plain, extname(plain));
  return `${name}.rejects.jsonl`;
}

function isUnderDev(dir: string): boolean {
  return `${realpathSync(dir)}/`.startsWith('/dev/');
}

/**
 * Returns the error of a command that accepted no row of its input file
 * because every row was rejected, such as a file whose texts are all empty.
 *
 * @param outcome - what would have happened to an accepted row, e.g. `queued`
 */
export function allRejectedError(
  input: string,
  rejected: number,
  rejectsPath: string,
  outcome: string,
): InputError {
  // NOTE: the count is of rejects, not of rows in the file, because a quote
  // that is never closed makes one reject of the rows after it.
  const rows = rejected === 1 ? '1 row was' : `${rejected} rows were`;
  return new InputError(
    `${inputName(input)}: no row was accepted and ${rows} rejected, so no document was ${outcome}; ` +
      `${rejectsPath} gives the reason for each rejected row. Fix the file or the CSV options and run the command again`,
  );
}

// How long a command that is exiting lets running extraction tasks finish
// before it ends their threads, in ms. A task of models/tiny takes well
// under a second; a task of a larger model may be cut short inside ONNX
// Runtime, which ExtractionPool.destroy describes.
export const EXIT_WAIT_MS = 1000;

export async function extract(
  inv: Invocation,
  settings: Settings,
  log: Logger,
): Promise<number> {
  const input = onePositional(inv, 'input CSV file');
  const output = requiredOption(inv, 'output');
  // Checked before the model loads, so a wrong path fails at once.
  checkInput(input);
  const target = resolveOutputTarget(output, {
    inputs: [input],
    label: `-o ${output}`,
  });
  const rejects =
    typeof inv.values.rejects === 'string'
      ? inv.values.rejects
      : rejectsPathFor(output, input, target);
  if (
    typeof inv.values.rejects === 'string' &&
    resolve(rejects) === resolve(output)
  ) {
    throw new InputError(
      `--rejects ${rejects} is the output file too; give the rejected rows a file of their own`,
    );
  }
  resolveOutputTarget(rejects, {
    inputs: [input],
    label:
      typeof inv.values.rejects === 'string'
        ? `--rejects ${rejects}`
        : `rejects file ${rejects} (choose it with --rejects)`,
  });
  const engine = await startEngine(settings, log, { cutsChunks: true });
  exitOnInterrupt(log, {
    // Exiting while a thread runs ONNX Runtime aborts the process, so the
    // threads stop first. From then on no task settles, so the output cannot
    // be committed after the temporary files are deleted.
    stop: () => engine.pool.destroy(EXIT_WAIT_MS),
    // An interrupted extract leaves an earlier output file in place, but
    // standard output, a FIFO or a device keeps the lines already written.
    message: () => {
      // An earlier file stays as it was; a new one is not created.
      if (target.kind === 'file') {
        return existsSync(target.path)
          ? 'uie-batch: interrupted; the output file was not changed\n'
          : `uie-batch: interrupted; nothing was written to ${output}\n`;
      }
      if (target.kind === 'device' && !wroteTo(target)) {
        return `uie-batch: interrupted; nothing was written to ${output}\n`;
      }
      return `uie-batch: interrupted; the output to ${outputName(output)} is incomplete\n`;
    },
  });
  try {
    const started = Date.now();
    const summary = await extractFile(
      engine,
      input,
      output,
      rejects,
      csvOptions(inv),
      log,
    );
    const seconds = (Date.now() - started) / 1000;
    // The log names the rejects file only when rows were written to it.
    log.info(
      summary.rejected > 0
        ? { ...summary, seconds, output, rejects }
        : { ...summary, seconds, output },
      'extract finished',
    );
    if (summary.documents === 0 && summary.rejected > 0) {
      throw allRejectedError(input, summary.rejected, rejects, 'extracted');
    }
    process.stderr.write(
      `${summary.documents} documents (${summary.chunks} chunks) written to ${outputName(output)}; ` +
        `${summary.failed} failed, ${summary.rejected} rows rejected` +
        (summary.rejected > 0 ? ` (see ${rejects})` : '') +
        '\n',
    );
    // The lines are written either way, but a script must be able to
    // tell a run that produced nothing from one that worked.
    if (summary.documents > 0 && summary.failed === summary.documents) {
      process.stderr.write(
        `uie-batch: every document failed; the "error" field of each line in ${outputName(output)} says why\n`,
      );
      return 1;
    }
    return 0;
  } finally {
    await engine.pool.close();
  }
}
