import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';

/** Exit status, output and wall time of one child process. */
export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** From spawn to exit, in milliseconds. */
  wallMs: number;
  /**
   * Date.now() just before spawn, in ms since the epoch, to compare with
   * times the child read from the same system clock, such as pino's `time`.
   */
  spawnedAt: number;
}

/** Options for runChild. */
export interface ChildOptions {
  env?: Record<string, string>;
  /** The child is killed after this many seconds and the call rejects. */
  timeoutSeconds: number;
}

const running = new Set<ChildProcess>();

/** Seconds between SIGTERM and SIGKILL for a child that does not stop. */
const KILL_GRACE_SECONDS = 5;

/**
 * Runs a command to completion and times it from spawn to exit.
 *
 * @throws Error when the command cannot start, times out or exits non-zero;
 *   the message contains the end of its stderr
 */
export function runChild(
  command: string,
  args: string[],
  options: ChildOptions,
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const spawnedAt = Date.now();
    const started = performance.now();
    const child = spawn(command, args, {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      stopChild(child);
    }, options.timeoutSeconds * 1000);

    child.on('error', (err) => {
      clearTimeout(timer);
      running.delete(child);
      reject(
        new Error(`cannot start ${command}: ${err.message}`, { cause: err }),
      );
    });
    child.on('close', (code, signal) => {
      const wallMs = performance.now() - started;
      clearTimeout(timer);
      running.delete(child);
      const name = [command, ...args.slice(0, 2)].join(' ');
      const tail = stderr.trim().split('\n').slice(-5).join('\n');
      if (timedOut) {
        reject(
          new Error(
            `${name} timed out after ${options.timeoutSeconds} s; raise --timeout`,
          ),
        );
      } else if (code !== 0) {
        reject(
          new Error(
            `${name} failed with ${signal ?? `exit code ${code}`}:\n${tail}`,
          ),
        );
      } else {
        resolve({ code, stdout, stderr, wallMs, spawnedAt });
      }
    });
  });
}

/**
 * Stops every child still running, for an interrupted bench, and resolves
 * once all have exited, so their last Redis writes land before cleanup.
 */
export async function stopAllChildren(): Promise<void> {
  const exits = [...running].map((child) => {
    const exited = new Promise((resolve) => child.once('close', resolve));
    stopChild(child);
    return exited;
  });
  await Promise.all(exits);
}

function stopChild(child: ChildProcess): void {
  child.kill('SIGTERM');
  setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null)
      child.kill('SIGKILL');
  }, KILL_GRACE_SECONDS * 1000).unref();
}
