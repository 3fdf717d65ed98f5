/**
 * The failure converter used when payload encryption is on: error messages and stack traces go into
 * the failure's `encodedAttributes` payload, which the payload codec then encrypts like any other
 * payload. Temporal stores "Encoded failure" as the message in their place.
 *
 * Loaded by path (`DataConverter.failureConverterPath`, see ./codec.ts): by clients, by the worker's
 * main thread (activity failures) and by the workflow bundle (failures thrown in workflow code),
 * which is why this module imports nothing but `@temporalio/common` and may run in the sandbox.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
