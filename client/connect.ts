/**
 * Connecting to Temporal as a client of Baton's tasks: the address, TLS and API key
 * (workers/options.ts) and the payload codec (workers/codec.ts) come from the same environment
 * variables the worker reads, so the CLIs and the inbox read what the worker wrote.
 */
import { Client, Connection, type ClientOptions } from '@temporalio/client';
import { dataConverterFromEnv } from '../workers/codec';
import { connectionOptions, temporalOptionsFromEnv, type TemporalOptions } from '../workers/options';

export interface ConnectOptions {
  /** Where and how to connect; default from the environment (`TEMPORAL_ADDRESS`, `TEMPORAL_TLS*`…). */
  temporal?: TemporalOptions;
  /** Payload encryption; default from the environment (`BATON_ENCRYPTION_KEY*`). */
  dataConverter?: ClientOptions['dataConverter'];
  /** Client interceptors, e.g. tracing (workers/telemetry.ts). */
  interceptors?: ClientOptions['interceptors'];
  /** Connect at the first call rather than now: `--help` and usage errors then need no server. */
  lazy?: boolean;
}

/** A client and the connection it owns: `close()` closes the connection. */
export interface ConnectedClient {
  client: Client;
  connection: Connection;
  temporal: TemporalOptions;
  close(): Promise<void>;
}

/**
 * Connects a client on the namespace of `TEMPORAL_NAMESPACE`. Throws on a bad environment value
 * (naming it) and, unless `lazy`, when the server does not answer.
 */
export async function connectClient(options: ConnectOptions = {}): Promise<ConnectedClient> {
  const temporal = options.temporal ?? temporalOptionsFromEnv();
  const dataConverter = options.dataConverter ?? dataConverterFromEnv();
  const connection = options.lazy
    ? Connection.lazy(connectionOptions(temporal))
    : await Connection.connect(connectionOptions(temporal));
  const client = new Client({
    connection,
    namespace: temporal.namespace,
    dataConverter,
    interceptors: options.interceptors,
  });
  return { client, connection, temporal, close: () => connection.close().catch(() => undefined) };
}
