/**
 * Where Baton keeps what outlives an activity: step findings and report bodies (artifacts, by content
 * hash), and published reports with their provenance. One small interface, two backends:
 *
 * - a local folder (the default, what `npm start` uses): `BATON_ARTIFACT_DIR` and `BATON_REPORT_DIR`;
 * - any S3-compatible store (AWS S3, MinIO, …) when `BATON_STORE=s3://<bucket>[/<prefix>]`, so workers
 *   on different machines share nothing but the bucket and Temporal. `BATON_S3_ENDPOINT` names a
 *   store other than AWS, `BATON_S3_FORCE_PATH_STYLE` addresses buckets by path (default on with an
 *   endpoint), the region and credentials come from the standard AWS variables (`AWS_REGION`,
 *   `AWS_ACCESS_KEY_ID`, …, or a profile or role) and are never logged.
 *
 * `create` is the write-once primitive: it writes only when no object has the key (an exclusive
 * create locally, `If-None-Match: *` on S3), so a signed-off report is never replaced.
 * docs/storage.md explains the layout, and running it on a laptop and in production.
 */
import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { StoreSettings } from './store-settings';

/** The largest object Baton stores or reads: far above any report, small enough to hold in memory. */
export const MAX_OBJECT_BYTES = 32 * 1024 * 1024;

/** A key: `/`-separated names of letters, digits, `.`, `_` and `-`, none of them `.` or `..`. */
const KEY_PATTERN = /^(?!\.\.?(\/|$))[A-Za-z0-9_-][A-Za-z0-9._-]*(\/(?!\.\.?(\/|$))[A-Za-z0-9._-]+)*$/;
const MAX_KEY_LENGTH = 512;

/** A store of objects by key. Keys are checked ({@link checkKey}); bodies are at most {@link MAX_OBJECT_BYTES}. */
export interface ObjectStore {
  /** The object, or undefined when there is none with this key. */
  get(key: string): Promise<Buffer | undefined>;
  /** Writes the object, replacing any with this key. */
  put(key: string, body: Buffer): Promise<void>;
  /** Writes the object only if none has this key: true when written, false when one was there already. */
  create(key: string, body: Buffer): Promise<boolean>;
  /** Where an object is, for people and messages: `s3://bucket/prefix/key`, or the local file. */
  locate(key: string): string;
  /**
   * The key of a location {@link locate} gave. Any other location (a file path recorded by an older
   * worker, or by a store set up elsewhere) stands for its last name in this store.
   */
  keyAt(location: string): string;
}

/** The two stores a worker uses: artifacts by content hash, and published reports. */
export interface Stores {
  artifacts: ObjectStore;
  reports: ObjectStore;
}

/** Refuses a key that could leave the store's folder or prefix, or is not a plain name. */
export function checkKey(key: string): string {
  if (key.length > MAX_KEY_LENGTH || !KEY_PATTERN.test(key)) {
    throw new Error(
      `invalid object key "${key.slice(0, 80)}" (keys are /-separated names of letters, digits, ".", "_" and "-", at most ${MAX_KEY_LENGTH} characters)`,
    );
  }
  return key;
}

function checkSize(key: string, bytes: number): void {
  if (bytes > MAX_OBJECT_BYTES) {
    throw new Error(`object ${key} is ${bytes} bytes, over the store's limit of ${MAX_OBJECT_BYTES}`);
  }
}

const errorCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

/**
 * A folder on this machine. Writes go to a unique temporary name first and are then moved (`put`)
 * or hard-linked (`create`, which fails when the name exists) into place, so a reader never sees
 * half an object and a crash never leaves one behind under its real name.
 */
export class LocalFolderStore implements ObjectStore {
  constructor(readonly root: string) {}

  private file(key: string): string {
    return path.join(this.root, ...checkKey(key).split('/'));
  }

  locate(key: string): string {
    return this.file(key);
  }

  keyAt(location: string): string {
    const relative = path.relative(this.root, location);
    return checkKey(
      relative && !relative.startsWith('..') && !path.isAbsolute(relative)
        ? relative.split(path.sep).join('/')
        : path.basename(location),
    );
  }

  async get(key: string): Promise<Buffer | undefined> {
    const file = this.file(key);
    let handle;
    try {
      handle = await fs.open(file, 'r');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    try {
      checkSize(key, (await handle.stat()).size);
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  }

  /** Writes `body` to a temporary file beside `file`; answers its name. */
  private async stage(key: string, body: Buffer): Promise<{ file: string; tmp: string }> {
    checkSize(key, body.length);
    const file = this.file(key);
    await fs.mkdir(path.dirname(file), { recursive: true });
    // Unique per write: two writers of the same key (same process or not) must not share it.
    const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
    await fs.writeFile(tmp, body, { flag: 'wx' });
    return { file, tmp };
  }

  async put(key: string, body: Buffer): Promise<void> {
    const { file, tmp } = await this.stage(key, body);
    await fs.rename(tmp, file);
  }

  async create(key: string, body: Buffer): Promise<boolean> {
    const { file, tmp } = await this.stage(key, body);
    try {
      // link(2) is an exclusive create: it fails with EEXIST when the name is taken.
      await fs.link(tmp, file);
      return true;
    } catch (err) {
      if (errorCode(err) === 'EEXIST') return false;
      throw err;
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }
}

const s3Status = (err: unknown): number | undefined =>
  err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;

/** A bucket (and key prefix) of an S3-compatible store. */
export class S3Store implements ObjectStore {
  /** @param prefix prepended to every key: empty, or ending in `/` */
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    readonly prefix: string,
  ) {}

  locate(key: string): string {
    return `s3://${this.bucket}/${this.prefix}${checkKey(key)}`;
  }

  keyAt(location: string): string {
    const base = `s3://${this.bucket}/${this.prefix}`;
    return checkKey(location.startsWith(base) ? location.slice(base.length) : path.basename(location));
  }

  /** Runs one request; a failure names the object and the operation (the SDK's message never holds credentials). */
  private async send<T>(op: string, key: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      if (!(err instanceof Error)) throw err;
      throw Object.assign(
        new Error(`${op} ${this.locate(key)} failed: ${err.name}: ${err.message}`, { cause: err }),
        {
          status: s3Status(err),
        },
      );
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    const Key = this.prefix + checkKey(key);
    try {
      return await this.send('reading', key, async () => {
        const answer = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
        checkSize(key, answer.ContentLength ?? 0);
        return Buffer.from(await answer.Body!.transformToByteArray());
      });
    } catch (err) {
      if ((err as { status?: number }).status === 404 && (err as Error).cause instanceof S3ServiceException) {
        const name = ((err as Error).cause as S3ServiceException).name;
        // NoSuchKey: the object is missing. NoSuchBucket is a setting to fix, and stays an error.
        if (name === 'NoSuchKey') return undefined;
      }
      throw err;
    }
  }

  async put(key: string, body: Buffer): Promise<void> {
    checkSize(key, body.length);
    const Key = this.prefix + checkKey(key);
    await this.send('writing', key, () =>
      this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: body })),
    );
  }

  async create(key: string, body: Buffer): Promise<boolean> {
    checkSize(key, body.length);
    const Key = this.prefix + checkKey(key);
    try {
      await this.send('creating', key, () =>
        this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: body, IfNoneMatch: '*' })),
      );
      return true;
    } catch (err) {
      // 412 Precondition Failed: an object has this key. (409, a concurrent conditional write, is
      // left to throw: the caller's retry reads the winner.)
      if ((err as { status?: number }).status === 412) return false;
      throw err;
    }
  }
}

/**
 * Encryption at rest for stored objects (workers/store.ts makes one from the payload codec's keys).
 * `open` takes what `seal` made for the same key, and any object stored without encryption as it is.
 */
export interface Sealer {
  seal(key: string, body: Buffer): Buffer;
  open(key: string, body: Buffer): Buffer;
}

/** A store whose objects are sealed on the way in and opened on the way out: the backend holds only ciphertext. */
export class SealedStore implements ObjectStore {
  constructor(
    private readonly inner: ObjectStore,
    private readonly sealer: Sealer,
  ) {}

  async get(key: string): Promise<Buffer | undefined> {
    const body = await this.inner.get(key);
    return body && this.sealer.open(key, body);
  }

  put(key: string, body: Buffer): Promise<void> {
    return this.inner.put(key, this.sealer.seal(key, body));
  }

  create(key: string, body: Buffer): Promise<boolean> {
    return this.inner.create(key, this.sealer.seal(key, body));
  }

  locate(key: string): string {
    return this.inner.locate(key);
  }

  keyAt(location: string): string {
    return this.inner.keyAt(location);
  }
}

/**
 * Where a process's store is: its settings ({@link storeSettingsFromEnv}; absent: local), the local
 * folders, and with payload encryption on, the sealer that encrypts what is stored.
 */
export interface StoreOptions {
  store?: StoreSettings;
  artifactDir: string;
  reportDir: string;
  sealer?: Sealer;
}

/** The stores the options name: artifacts and reports in two folders, or under two prefixes of one bucket. */
export function openStores(options: StoreOptions): Stores {
  const { sealer } = options;
  const stores = backendStores(options);
  return sealer
    ? {
        artifacts: new SealedStore(stores.artifacts, sealer),
        reports: new SealedStore(stores.reports, sealer),
      }
    : stores;
}

function backendStores(options: StoreOptions): Stores {
  const settings = options.store ?? { kind: 'local' };
  if (settings.kind === 'local') {
    return {
      artifacts: new LocalFolderStore(options.artifactDir),
      reports: new LocalFolderStore(options.reportDir),
    };
  }
  const client = new S3Client({
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
  });
  return {
    artifacts: new S3Store(client, settings.bucket, `${settings.prefix}artifacts/`),
    reports: new S3Store(client, settings.bucket, `${settings.prefix}reports/`),
  };
}
