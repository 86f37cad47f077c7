import { constants } from 'node:os';

import type { Logger } from 'pino';

import { abortAllOutputs } from '../output/output-file.js';
import { exitProcess } from './main.js';

/**
 * Signals on which extract, export and enqueue stop at once. SIGHUP comes
 * when the terminal closes. SIGQUIT keeps its default action, a core dump of
 * the process as it is, for debugging a hang, so it leaves the temporary
 * files `.NAME.partial-PID` beside the outputs.
 */
export const INTERRUPTS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Cleanup and message of a command that one of {@link INTERRUPTS} stops. */
export interface InterruptHandling {
  /**
   * Work that must end before the process exits, such as stopping the pool
   * threads. Its failure is ignored, because the process exits either way.
   */
  stop?: () => Promise<unknown>;
  /**
   * Returns the line for stderr, with its line end, once `stop` is done.
   * `replaced` lists the output paths that a commit in progress had already
   * replaced when the signal came.
   */
  message: (replaced: ReadonlySet<string>) => string;
}

/**
 * Installs handlers that end the command on SIGINT, SIGTERM or SIGHUP. Each
 * runs `stop`, deletes the temporary files of every uncommitted output and
 * prints the message. It then exits with 128 plus the signal number, as a
 * shell reports a command killed by that signal.
 *
 * @returns a function that removes the handlers
 */
export function exitOnInterrupt(
  log: Logger,
  handling: InterruptHandling,
): () => void {
  const interrupt = (signal: NodeJS.Signals) => {
    void Promise.resolve()
      .then(handling.stop)
      .catch(() => undefined)
      .then(() => {
        const replaced = abortAllOutputs();
        exitProcess(
          log,
          128 + constants.signals[signal],
          handling.message(replaced),
        );
      });
  };
  for (const signal of INTERRUPTS) process.once(signal, interrupt);
  return () => {
    for (const signal of INTERRUPTS) process.off(signal, interrupt);
  };
}
