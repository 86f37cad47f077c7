import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

import {
  readJsonl,
  runCli,
  tempDir,
  uniquePrefix,
  type CliResult,
} from './helpers.js';

// Random, so a match in the output can only come from the password. The
// characters around it must be percent-encoded in a URL and decoded again
// by ioredis.
const SECRET_MARK = randomBytes(8).toString('hex');
const SECRET = `uie+${SECRET_MARK}@p/ss%`;
const WRONG_MARK = randomBytes(8).toString('hex');

const OPENSSL_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = uie-batch test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
[server]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
`;

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];

/** A private redis-server that accepts only TLS and requires SECRET. */
interface TlsRedis {
  process: ChildProcess;
  port: number;
  caFile: string;
}

function runOpenssl(args: string[]): void {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`openssl ${args[0]} failed: ${result.stderr}`);
  }
}

/** Writes a throwaway CA and a server certificate for 127.0.0.1 it signed. */
function makeCertificates(dir: string): void {
  const config = join(dir, 'openssl.cnf');
  writeFileSync(config, OPENSSL_CONFIG);
  runOpenssl([
    'req',
    '-x509',
    '-config',
    config,
    '-extensions',
    'ca',
    ...EC_KEY,
    '-nodes',
    '-keyout',
    join(dir, 'ca.key'),
    '-out',
    join(dir, 'ca.crt'),
    '-days',
    '1',
    '-subj',
    '/CN=uie-batch test CA',
  ]);
  runOpenssl([
    'req',
    '-new',
    '-config',
    config,
    ...EC_KEY,
    '-nodes',
    '-keyout',
    join(dir, 'server.key'),
    '-out',
    join(dir, 'server.csr'),
    '-subj',
    '/CN=127.0.0.1',
  ]);
  runOpenssl([
    'x509',
    '-req',
    '-in',
    join(dir, 'server.csr'),
    '-CA',
    join(dir, 'ca.crt'),
    '-CAkey',
    join(dir, 'ca.key'),
    '-set_serial',
    '1',
    '-days',
    '1',
    '-extfile',
    config,
    '-extensions',
    'server',
    '-out',
    join(dir, 'server.crt'),
  ]);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts redis-server on a free TLS port of 127.0.0.1 and waits until it
 * accepts connections.
 *
 * @returns the server, or the reason the tests must be skipped when this
 *   redis-server has no TLS support
 * @throws Error with the server's output when it stops for another reason
 */
async function startTlsRedis(dir: string): Promise<TlsRedis | string> {
  const port = await freePort();
  // prettier-ignore
  const args = [
    '--bind', '127.0.0.1',
    '--port', '0',
    '--tls-port', String(port),
    '--tls-cert-file', join(dir, 'server.crt'),
    '--tls-key-file', join(dir, 'server.key'),
    '--tls-ca-cert-file', join(dir, 'ca.crt'),
    '--tls-auth-clients', 'no',
    '--requirepass', SECRET,
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'no',
    '--dir', dir,
  ];
  const server = spawn('redis-server', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 15_000);
    const read = (data: Buffer) => {
      output += data.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    server.stdout.on('data', read);
    server.stderr.on('data', read);
    server.once('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (ready) return { process: server, port, caFile: join(dir, 'ca.crt') };

  server.kill();
  // A redis-server built without TLS does not know the tls-* options, and
  // stops at the first one with "Bad directive".
  if (/>>> 'tls-[\s\S]*Bad directive/.test(output)) {
    return 'redis-server was built without TLS support';
  }
  throw new Error(`redis-server did not start:\n${output}`);
}

/** Starts the server, or returns why the tests cannot run on this machine. */
async function setUp(): Promise<TlsRedis | string> {
  for (const [tool, flag] of [
    ['openssl', 'version'],
    ['redis-server', '--version'],
  ]) {
    if (spawnSync(tool, [flag]).error) return `${tool} is not installed`;
  }
  const dir = tempDir('redis-tls');
  makeCertificates(dir);
  return startTlsRedis(dir);
}

const setup = await setUp();
const redis = typeof setup === 'string' ? undefined : setup;
const skip = typeof setup === 'string' ? setup : false;
// Kills the server also when the process exits without the after hook.
process.once('exit', () => redis?.process.kill());

function tlsUrl(password: string, user = ''): string {
  return `rediss://${user}:${encodeURIComponent(password)}@127.0.0.1:${redis!.port}`;
}

/** Environment of a CLI run against the private server. */
function cliEnv(url: string, extra: Record<string, string> = {}) {
  return {
    REDIS_URL: url,
    NODE_EXTRA_CA_CERTS: redis!.caFile,
    LOG_LEVEL: 'debug',
    // ioredis debug output lists AUTH arguments, so it must stay off here.
    DEBUG: '',
    ...extra,
  };
}

function assertNoSecret(command: string, result: CliResult): void {
  const output = result.stdout + result.stderr;
  assert.ok(
    !output.includes(SECRET_MARK),
    `${command} printed the password:\n${output}`,
  );
}

function assertSucceeded(command: string, result: CliResult): void {
  assert.equal(result.code, 0, `${command} failed:\n${result.stderr}`);
}

describe('when Redis requires TLS and a password', { skip }, () => {
  after(() => {
    redis?.process.kill();
  });

  it('runs a batch end to end', { timeout: 180_000 }, async () => {
    const dir = tempDir('redis-tls-run');
    const input = join(dir, 'in.csv');
    const output = join(dir, 'out.jsonl');
    writeFileSync(
      input,
      'id,text\n' +
        '1,张三在北京市工作。\n' +
        '2,李四在上海市开了一家公司。\n' +
        '3,王五去年搬到了深圳市。\n' +
        '4,赵六在清华大学读书。\n',
    );
    const env = cliEnv(tlsUrl(SECRET), {
      UIE_PREFIX: uniquePrefix('tls'),
      UIE_OUTPUT_DIR: join(dir, 'results'),
    });

    const enqueued = await runCli(['enqueue', input, '--run', 'tls'], env);
    assertSucceeded('enqueue', enqueued);
    assertNoSecret('enqueue', enqueued);

    const worked = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      env,
    );
    assertSucceeded('work', worked);
    assertNoSecret('work', worked);

    const exported = await runCli(
      ['export', '--run', 'tls', '-o', output],
      env,
    );
    assertSucceeded('export', exported);
    assertNoSecret('export', exported);

    const status = await runCli(['status', '--run', 'tls', '--json'], env);
    assertSucceeded('status', status);
    assertNoSecret('status', status);

    const lines = readJsonl<{ id: string; error?: string }>(output);
    assert.deepEqual(
      lines.map((l) => l.id),
      ['1', '2', '3', '4'],
    );
    assert.deepEqual(
      lines.filter((l) => l.error !== undefined),
      [],
    );
    const [run] = JSON.parse(status.stdout).runs;
    assert.equal(run.documents, 4);
    assert.equal(run.done, run.chunks);
  });

  it('accepts an ACL user name', { timeout: 60_000 }, async () => {
    const result = await runCli(['status'], cliEnv(tlsUrl(SECRET, 'default')));

    assertSucceeded('status', result);
    assertNoSecret('status', result);
  });

  it('rejects a wrong password', { timeout: 60_000 }, async () => {
    const started = Date.now();
    const result = await runCli(
      ['status'],
      cliEnv(tlsUrl(`wrong-${WRONG_MARK}`)),
    );

    assert.equal(result.code, 1);
    assert.ok(Date.now() - started < 20_000, 'status took longer than 20 s');
    assert.ok(
      result.stderr.includes(
        `authentication to Redis at rediss://:***@127.0.0.1:${redis!.port} failed`,
      ),
      result.stderr,
    );
    assert.match(
      result.stderr,
      /check the user name and password in REDIS_URL/,
    );
    assert.ok(!result.stderr.includes(WRONG_MARK), result.stderr);
    assertNoSecret('status', result);
  });

  it('rejects a plain redis:// URL', { timeout: 60_000 }, async () => {
    const started = Date.now();
    const url = tlsUrl(SECRET).replace(/^rediss:/, 'redis:');
    const result = await runCli(['status'], cliEnv(url));

    assert.equal(result.code, 1);
    assert.ok(Date.now() - started < 20_000, 'status took longer than 20 s');
    assert.ok(
      result.stderr.includes(`Redis at redis://:***@127.0.0.1:${redis!.port}`),
      result.stderr,
    );
    assert.match(result.stderr, /use a rediss:\/\/ URL/);
    assertNoSecret('status', result);
  });

  it('rejects an untrusted certificate', { timeout: 60_000 }, async () => {
    const started = Date.now();
    const env = cliEnv(tlsUrl(SECRET), { NODE_EXTRA_CA_CERTS: '' });
    const result = await runCli(['status'], env);

    assert.equal(result.code, 1);
    assert.ok(Date.now() - started < 20_000, 'status took longer than 20 s');
    assert.match(result.stderr, /cannot verify the TLS certificate of Redis/);
    assert.match(result.stderr, /set NODE_EXTRA_CA_CERTS/);
    assertNoSecret('status', result);
  });
});
