import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

import type { Settings } from '../config/config.js';
import { HealthCheck, type HealthReport } from './metrics-health.js';
import { MetricsRegistry } from './metrics-registry.js';
import type { WorkerMetrics } from './metrics.js';

/** Options of the HTTP server that serves /metrics and /health. */
export interface MetricsServerOptions {
  /** Address to listen on, such as `0.0.0.0` or `127.0.0.1`. */
  host: string;
  /** TCP port, where 0 lets the system pick a free one. */
  port: number;
  /** Metric families rendered on /metrics. */
  registry: MetricsRegistry;
  /** Check run on each request to /health. */
  health: HealthCheck;
}

/** A listening metrics server. */
export interface MetricsServer {
  /** Port the server listens on. */
  readonly port: number;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

// A Redis outage fails every scrape, so one log line per interval is enough.
const SCRAPE_ERROR_LOG_INTERVAL_MS = 60_000;

/**
 * Starts the metrics server of a worker when `metricsPort` is above 0, with
 * a health check on the worker, its Redis connection and its queue.
 *
 * @returns the listening server, or undefined when metrics are off
 * @throws Error when the port cannot be bound, such as when it is in use
 */
export async function serveWorkerMetrics(
  settings: Settings,
  worker: Worker,
  queue: Queue,
  connection: Redis,
  metrics: WorkerMetrics,
  log: Logger,
): Promise<MetricsServer | undefined> {
  if (settings.metricsPort === 0) return undefined;
  let connectionError: string | undefined;
  connection.on('error', (err: Error) => (connectionError = err.message));
  connection.on('ready', () => (connectionError = undefined));
  const health = new HealthCheck({
    worker,
    ping: () => connection.ping(),
    connectionError: () => connectionError,
    waitingJobs: async () => {
      // Jobs held by a paused queue are the operator's choice, not a stall.
      if (await queue.isPaused()) return 0;
      const counts = await queue.getJobCounts('waiting', 'prioritized');
      return counts.waiting + counts.prioritized;
    },
    lastActivity: () => metrics.lastActivity,
    stallSeconds: settings.healthStallSeconds,
  });
  const server = await startMetricsServer(
    {
      host: settings.metricsHost,
      port: settings.metricsPort,
      registry: metrics.registry,
      health,
    },
    log,
  );
  log.info(
    { host: settings.metricsHost, port: server.port },
    'metrics listening',
  );
  return server;
}

/**
 * Starts an HTTP server with two routes: GET /metrics returns the registry
 * in the Prometheus text format, and GET /health returns the health report
 * as JSON with status 200 when healthy and 503 when not. Other paths get
 * 404 and other methods 405.
 *
 * @throws Error when the port cannot be bound
 */
export async function startMetricsServer(
  options: MetricsServerOptions,
  log: Logger,
): Promise<MetricsServer> {
  const handler = new RequestHandler(options, log);
  const server = createServer((req, res) => {
    handler.handle(req, res).catch((err: unknown) => {
      log.error({ err, url: req.url }, 'metrics request failed');
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
      else res.destroy();
    });
  });
  await listen(server, options.host, options.port);
  server.on('error', (err) => log.error({ err }, 'metrics server error'));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

class RequestHandler {
  private healthy = true;
  private lastScrapeErrorLog = 0;
  private suppressedScrapeErrors = 0;

  constructor(
    private readonly options: MetricsServerOptions,
    private readonly log: Logger,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/metrics' && path !== '/health') {
      send(res, 404, 'text/plain', 'not found; use /metrics or /health\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'text/plain', 'method not allowed; use GET\n');
      return;
    }

    if (path === '/metrics') {
      const text = await this.options.registry.render((metric, err) =>
        this.logScrapeError(metric, err),
      );
      send(res, 200, MetricsRegistry.CONTENT_TYPE, text);
      return;
    }
    const report = await this.options.health.check();
    this.logHealthChange(report);
    const status = report.status === 'ok' ? 200 : 503;
    send(res, status, 'application/json', JSON.stringify(report) + '\n');
  }

  private logScrapeError(metric: string, err: unknown): void {
    const now = Date.now();
    if (now - this.lastScrapeErrorLog < SCRAPE_ERROR_LOG_INTERVAL_MS) {
      this.suppressedScrapeErrors++;
      return;
    }
    this.log.warn(
      { metric, err, suppressed: this.suppressedScrapeErrors },
      'metric left out of scrape',
    );
    this.lastScrapeErrorLog = now;
    this.suppressedScrapeErrors = 0;
  }

  /** Logs only changes, because health checks repeat every few seconds. */
  private logHealthChange(report: HealthReport): void {
    const healthy = report.status === 'ok';
    if (healthy === this.healthy) return;
    this.healthy = healthy;
    if (healthy) this.log.info({ ...report }, 'worker healthy again');
    else this.log.warn({ ...report }, 'worker unhealthy');
  }
}

function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
): void {
  const type = contentType.includes('charset')
    ? contentType
    : `${contentType}; charset=utf-8`;
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

async function listen(server: Server, host: string, port: number) {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      reject(
        new Error(
          `cannot listen for metrics on ${host}:${port} (${err.message}); ` +
            'set UIE_METRICS_PORT to a free port, or to 0 to turn metrics off',
          { cause: err },
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
