import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import {
  createServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import { join } from 'node:path';

import { startCli, tempDir, type CliResult } from './helpers.js';

/**
 * Runs the CLI as runCli does, but kills it with SIGKILL after limitMs, so
 * a command that hangs fails the test instead of holding it open.
 */
async function runCliWithin(
  args: string[],
  env: Record<string, string>,
  limitMs: number,
): Promise<CliResult> {
  const { child, result } = startCli(args, env);
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  try {
    return await result;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts a TCP server on 127.0.0.1 that accepts every connection and never
 * writes, as a paused redis-server does.
 */
async function startSilentServer(): Promise<{
  port: number;
  connections: () => number;
  close: () => Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A client that gives up resets the socket, which is expected here.
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // A server listening on a TCP port has an AddressInfo, not a pipe name.
  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    connections: () => accepted,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('when Redis accepts but never replies', () => {
  let server: Awaited<ReturnType<typeof startSilentServer>>;
  let env: Record<string, string>;
  let redisShown: string;
  const dir = tempDir('redis-no-reply');
  const input = join(dir, 'in.csv');
  const archive = join(dir, 'archive');

  before(async () => {
    server = await startSilentServer();
    env = {
      REDIS_URL: `redis://:s3cret@127.0.0.1:${server.port}`,
      UIE_REDIS_TIMEOUT_SECONDS: '1',
      UIE_OUTPUT_DIR: join(dir, 'results'),
    };
    redisShown = `redis://:\\*\\*\\*@127\\.0\\.0\\.1:${server.port}`;
    writeFileSync(input, 'id,text\n1,张三在北京。\n');
    mkdirSync(archive);
    writeFileSync(join(archive, 'a.txt'), '张三在北京。\n');
  });

  after(() => server.close());

  const commands: [string, () => string[]][] = [
    ['status', () => ['status']],
    ['enqueue', () => ['enqueue', input, '--run', 'r1']],
    ['export', () => ['export', '--run', 'r1', '-o', join(dir, 'out.jsonl')]],
    ['forget', () => ['forget', '--run', 'r1']],
    ['scan', () => ['scan', '--archive', archive]],
    [
      'schedule',
      () => ['schedule', '--archive', archive, '--cron', '0 2 * * *'],
    ],
  ];
  for (const [name, args] of commands) {
    it(`fails ${name} within the timeout`, async () => {
      const before = server.connections();
      const started = Date.now();
      const result = await runCliWithin(args(), env, 30_000);
      const seconds = (Date.now() - started) / 1000;

      assert.equal(result.code, 1, result.stderr);
      assert.ok(server.connections() > before, 'no connection was made');
      // 1 s of timeout plus the start of Node and the CLI on a busy machine.
      assert.ok(seconds < 15, `${name} took ${seconds} s`);
      assert.match(
        result.stderr,
        new RegExp(
          `^uie-batch: Redis at ${redisShown} accepted the connection but did not reply within 1 s; ` +
            'check that REDIS_URL points to a Redis server and that the server is not paused, ' +
            'overloaded or still loading its data \\(UIE_REDIS_TIMEOUT_SECONDS sets how long to wait\\)\\n$',
        ),
      );
      assert.doesNotMatch(result.stderr + result.stdout, /s3cret/);
    });
  }

  it('fails a draining worker at start', async () => {
    const started = Date.now();
    const result = await runCliWithin(
      ['work', '--exit-when-drained'],
      env,
      40_000,
    );
    const seconds = (Date.now() - started) / 1000;

    assert.equal(result.code, 1, result.stderr);
    // The pool's start and the model load come first.
    assert.ok(seconds < 8, `work took ${seconds} s`);
    assert.match(
      result.stderr,
      new RegExp(
        `uie-batch: Redis at ${redisShown} accepted the connection but did not reply within 1 s; ` +
          'check that REDIS_URL points to a Redis server',
      ),
    );
    assert.doesNotMatch(result.stderr + result.stdout, /s3cret/);
  });

  it('warns from a worker that keeps waiting', async () => {
    const { child, result } = startCli(['work', '--threads', '1'], env);
    try {
      const warning = await waitForLine(
        child.stderr!,
        /accepted the connection but has not replied/,
        30_000,
      );
      const entry = JSON.parse(warning) as {
        level: number;
        redis: string;
        waitedSeconds: number;
        msg: string;
      };

      // pino level 40 is warn.
      assert.equal(entry.level, 40);
      assert.equal(entry.redis, `redis://:***@127.0.0.1:${server.port}`);
      assert.ok(entry.waitedSeconds >= 1, warning);
      assert.match(
        entry.msg,
        /^Redis accepted the connection but has not replied; check that the server is not paused/,
      );
      assert.equal(child.exitCode, null, 'the worker stopped waiting');
    } finally {
      child.kill('SIGKILL');
      await result;
    }
    assert.doesNotMatch((await result).stderr, /s3cret/);
  });
});

/**
 * Resolves with the first line of stream that matches pattern, or rejects
 * after timeoutMs with the output read so far.
 */
function waitForLine(
  stream: NodeJS.ReadableStream,
  pattern: RegExp,
  timeoutMs: number,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      stream.off('data', onData);
      reject(new Error(`no line matched ${pattern} in: ${text}`));
    }, timeoutMs);
    const onData = (chunk: Buffer | string) => {
      text += chunk;
      const line = text.split('\n').find((l) => pattern.test(l));
      if (line === undefined) return;
      clearTimeout(timer);
      stream.off('data', onData);
      resolve(line);
    };
    stream.on('data', onData);
  });
}
