/** The worker's health endpoint (workers/health.ts): 200 only while the worker runs. */
import type { State } from '@temporalio/worker';
import { healthOptionsFromEnv, startHealthServer } from '../workers/health';

test('GET /healthz is 200 while running and 503 in every other state, with the state', async () => {
  let state: State = 'INITIALIZED';
  const server = await startHealthServer({ port: 0, host: '127.0.0.1' }, () => state);
  try {
    const check = async () => {
      const res = await fetch(`http://127.0.0.1:${server.port}/healthz`);
      return [res.status, await res.json()];
    };
    expect(await check()).toEqual([503, { state: 'INITIALIZED' }]);
    state = 'RUNNING';
    expect(await check()).toEqual([200, { state: 'RUNNING' }]);
    state = 'DRAINING';
    expect(await check()).toEqual([503, { state: 'DRAINING' }]);
    const other = await fetch(`http://127.0.0.1:${server.port}/healthz`, { method: 'POST' });
    expect(other.status).toBe(404);
  } finally {
    await server.close();
  }
});

test('BATON_HEALTH_PORT turns it on; a bad port is named', () => {
  expect(healthOptionsFromEnv({})).toBeUndefined();
  expect(healthOptionsFromEnv({ BATON_HEALTH_PORT: '8081' })).toEqual({ port: 8081, host: '127.0.0.1' });
  expect(healthOptionsFromEnv({ BATON_HEALTH_PORT: '8081', BATON_HEALTH_HOST: '0.0.0.0' })).toEqual({
    port: 8081,
    host: '0.0.0.0',
  });
  expect(() => healthOptionsFromEnv({ BATON_HEALTH_PORT: 'http' })).toThrow(
    'BATON_HEALTH_PORT must be a port number, 1–65535 (got "http")',
  );
});
