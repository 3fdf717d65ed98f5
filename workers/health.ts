/**
 * A worker's health endpoint, for container health checks (docker-compose.yml) and orchestrators:
 * `GET /healthz` answers 200 while the worker is running and polling, 503 otherwise (starting,
 * draining after SIGTERM, stopped, failed), with the state as JSON. Off unless `BATON_HEALTH_PORT`
 * is set; binds `BATON_HEALTH_HOST` (default 127.0.0.1: a check from inside the container).
 */
import type { State } from '@temporalio/worker';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HealthOptions {
  port: number;
  host: string;
}

/** Reads `BATON_HEALTH_PORT` / `BATON_HEALTH_HOST`; undefined when no port is set. */
export function healthOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): HealthOptions | undefined {
  const raw = env.BATON_HEALTH_PORT;
  if (!raw) return undefined;
  const port = Number(raw);
  if (!/^\d{1,5}$/.test(raw) || port < 1 || port > 65535) {
    throw new Error(`BATON_HEALTH_PORT must be a port number, 1–65535 (got "${raw}")`);
  }
  return { port, host: env.BATON_HEALTH_HOST || '127.0.0.1' };
}

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

/** Serves the health of whatever `state()` reports (the worker's `getState`). */
export async function startHealthServer(options: HealthOptions, state: () => State): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/healthz') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"GET /healthz only"}');
      return;
    }
    const current = state();
    res
      .writeHead(current === 'RUNNING' ? 200 : 503, { 'content-type': 'application/json' })
      .end(JSON.stringify({ state: current }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
