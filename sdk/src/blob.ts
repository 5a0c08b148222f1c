/**
 * Content-addressed blobs (PROTOCOL.md §11): job specs, inputs and outputs are stored and fetched by
 * the SHA-256 digest of their bytes; only digests go on-chain.
 *
 * **Digest form.** The canonical form is the on-chain `bytes32` one: `0x` followed by 64 lower-case hex
 * digits (what ethers' `hexlify` prints). Every function here also accepts the bare 64-digit form and
 * upper-case digits, and normalises them with {@link normalizeDigest}; what it returns is always
 * canonical.
 *
 * **Stores.** {@link MemoryBlobStore} (tests, one process), {@link HttpBlobStore} (a client of any
 * server speaking the tiny protocol below), {@link DirectoryBlobStore} (a local directory) and
 * {@link startBlobServer} (the embedded default store that operators and the local devnet run: a
 * directory served over HTTP on 127.0.0.1).
 *
 * **HTTP protocol.** `PUT {base}/blobs/{digest}` with the raw bytes as body (201 created, 200 when it
 * was already there; 400 when the body does not hash to `{digest}` or the digest is malformed; 413 when
 * it is larger than the server allows), `GET {base}/blobs/{digest}` (200 with the bytes, 404) and
 * `HEAD {base}/blobs/{digest}` (200, 404); a failure of the server's own (a file it cannot write) is a
 * 500 whose body says only `internal error`. `{digest}` may be in either form. Clients never trust a
 * server: {@link HttpBlobStore.get} re-hashes what it receives. A server on a loopback address answers
 * 403 to a request from a web page of another site, or one naming a host other than a loopback one
 * (see {@link foreignRequest}).
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, rename, stat, unlink, utimes, type FileHandle } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { concatBytes } from "./encoding.js";
import { MeshworkBlobError, MeshworkConfigError } from "./errors.js";

/** `0x` + 64 hex digits, or 64 hex digits. Either case. */
const DIGEST_RE = /^(?:0x)?([0-9a-fA-F]{64})$/;

/**
 * A place to put bytes and get them back by their SHA-256 digest.
 *
 * Implementations must return the canonical digest (`0x` + 64 lower-case hex digits) from `put`,
 * accept both digest forms in `get` and `has`, and throw a {@link MeshworkBlobError} from `get` when the
 * blob is missing or its bytes do not hash to the digest. An IPFS backend can implement this interface
 * later with the same digests (a raw-leaf CIDv1 with the sha2-256 multihash carries exactly this
 * digest), so nothing on-chain or in a job spec changes when a deployment moves to IPFS.
 */
export interface BlobStore {
  /**
   * Stores `bytes`; resolves to their digest. Idempotent. `digest`, when the caller already has the
   * SHA-256 of these exact bytes, spares hashing them again: a store in the caller's process trusts it,
   * a remote one still checks it (a blob server rejects a body that does not match).
   */
  put(bytes: Uint8Array, digest?: string): Promise<string>;
  /**
   * The bytes whose SHA-256 is `digest`, verified. Throws {@link MeshworkBlobError} when missing, and
   * (`details.reason` "too-large") when longer than `options.maxBytes`: a remote store stops reading
   * there, so a caller that knows a blob's size bounds what a wrong one costs it.
   */
  get(digest: string, options?: BlobGetOptions): Promise<Uint8Array>;
  /** Whether the store holds `digest`. */
  has(digest: string): Promise<boolean>;
}

export interface BlobGetOptions {
  /** Longest blob to accept, in bytes (default: no limit). */
  maxBytes?: number;
  /**
   * `false`: the caller hashes the bytes itself (as `fetchResult` does), so the store need not hash them
   * too; the HTTP store then returns them unchecked. A store may check anyway (the directory store
   * does, to drop a file changed on disk). Default: checked.
   */
  verify?: boolean;
}

/** The error of a blob longer than a get's `maxBytes` (`size`: its length, or as much as was read). */
function blobTooLarge(digest: string, size: number, maxBytes: number, details: Record<string, unknown> = {}): MeshworkBlobError {
  return new MeshworkBlobError(`blob longer than the ${maxBytes} bytes asked for`, { details: { digest, reason: "too-large", maxBytes, size, ...details } });
}

/** Whether `value` is a SHA-256 digest in either accepted form. */
export function isDigest(value: unknown): value is string {
  return typeof value === "string" && DIGEST_RE.test(value);
}

/**
 * The canonical form of a digest: `0x` + 64 lower-case hex digits. Accepts the bare form and upper-case
 * digits; throws {@link MeshworkBlobError} for anything else.
 */
export function normalizeDigest(digest: string): string {
  const m = typeof digest === "string" ? DIGEST_RE.exec(digest) : null;
  if (!m) throw new MeshworkBlobError("malformed blob digest: expected 64 hex digits, optionally 0x-prefixed", { details: { digest } });
  return "0x" + m[1].toLowerCase();
}

/** The canonical SHA-256 digest of `bytes`. */
export function digestOf(bytes: Uint8Array): string {
  return "0x" + createHash("sha256").update(bytes).digest("hex");
}

/** Throws a {@link MeshworkBlobError} unless `bytes` hash to `digest`. */
export function verifyBlob(digest: string, bytes: Uint8Array, details: Record<string, unknown> = {}): void {
  const expected = normalizeDigest(digest);
  const actual = digestOf(bytes);
  if (actual !== expected) {
    throw new MeshworkBlobError("blob digest mismatch: the bytes received do not hash to the digest asked for", {
      details: { digest: expected, actual, size: bytes.length, ...details },
    });
  }
}

/**
 * A blob store in this process's memory: for tests and single-process demos. It keeps a copy of what it
 * is given and trusts a `digest` passed to `put` (the caller is this process).
 */
export class MemoryBlobStore implements BlobStore {
  readonly #blobs = new Map<string, Uint8Array>();

  async put(bytes: Uint8Array, digest?: string): Promise<string> {
    const key = digest === undefined ? digestOf(bytes) : normalizeDigest(digest);
    if (!this.#blobs.has(key)) this.#blobs.set(key, new Uint8Array(bytes)); // a copy (a Buffer's slice() is a view)
    return key;
  }

  async get(digest: string, options: BlobGetOptions = {}): Promise<Uint8Array> {
    const key = normalizeDigest(digest);
    const bytes = this.#blobs.get(key);
    if (!bytes) throw new MeshworkBlobError("blob not found", { details: { digest: key } });
    if (options.maxBytes !== undefined && bytes.length > options.maxBytes) throw blobTooLarge(key, bytes.length, options.maxBytes);
    return new Uint8Array(bytes);
  }

  async has(digest: string): Promise<boolean> {
    return this.#blobs.has(normalizeDigest(digest));
  }

  /** Number of blobs held. */
  get size(): number {
    return this.#blobs.size;
  }
}

export interface HttpBlobStoreOptions {
  /** Limit for each request, response body included, in milliseconds (default 30 000). */
  timeoutMs?: number;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
}

/**
 * A client of a blob server (see the module comment for the protocol): {@link startBlobServer}'s, or any
 * gateway speaking the same three requests. Every failure is a {@link MeshworkBlobError} with `details`
 * `{ digest, status, url }` (status absent when no response came) and the underlying error as `cause`.
 * Redirects are not followed: a 3xx answer is a failure (`details.reason` "redirect", `location`).
 */
export class HttpBlobStore implements BlobStore {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(baseUrl: string, options: HttpBlobStoreOptions = {}) {
    this.baseUrl = baseUrl.endsWith("/") ? baseUrl : baseUrl + "/";
    this.timeoutMs = options.timeoutMs ?? 30_000;
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new MeshworkBlobError("no fetch available: pass options.fetch", { details: { baseUrl } });
    this.#fetch = f;
  }

  /** The URL of a blob on this server. */
  urlOf(digest: string): string {
    return new URL(`blobs/${normalizeDigest(digest)}`, this.baseUrl).toString();
  }

  async put(bytes: Uint8Array, known?: string): Promise<string> {
    const digest = known === undefined ? digestOf(bytes) : normalizeDigest(known); // the server checks it
    await this.#request("PUT", digest, async (res, url) => {
      if (res.ok) {
        await res.body?.cancel().catch(() => {});
        return;
      }
      throw await statusError(res, digest, url, "PUT");
    }, bytes);
    return digest;
  }

  async get(digest: string, options: BlobGetOptions = {}): Promise<Uint8Array> {
    const key = normalizeDigest(digest);
    return this.#request("GET", key, async (res, url) => {
      if (!res.ok) throw await statusError(res, key, url, "GET");
      const bytes = options.maxBytes === undefined ? new Uint8Array(await res.arrayBuffer()) : await readAtMost(res, key, url, options.maxBytes);
      if (options.verify !== false) verifyBlob(key, bytes, { status: res.status, url });
      return bytes;
    });
  }

  async has(digest: string): Promise<boolean> {
    const key = normalizeDigest(digest);
    return this.#request("HEAD", key, async (res, url) => {
      if (res.status === 200 || res.status === 204) return true;
      if (res.status === 404) return false;
      throw await statusError(res, key, url, "HEAD");
    });
  }

  /**
   * One request whose response `handle` reads, all within the timeout. Transport failures (refused or
   * dropped connection, timeout, a body cut short) become {@link MeshworkBlobError}s; errors `handle`
   * throws itself pass through.
   */
  async #request<T>(method: string, digest: string, handle: (res: Response, url: string) => Promise<T>, body?: Uint8Array): Promise<T> {
    const url = this.urlOf(digest);
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`timed out after ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    try {
      const res = await this.#fetch(url, {
        method,
        body: body as BodyInit | undefined,
        headers: body ? { "content-type": "application/octet-stream" } : undefined,
        signal: controller.signal,
        // Not followed: a gateway could otherwise send this node's requests to any address it can
        // reach (an internal service, a cloud metadata endpoint).
        redirect: "manual",
      });
      if ((res.status >= 300 && res.status < 400) || res.type === "opaqueredirect") {
        await res.body?.cancel().catch(() => {});
        const location = res.headers.get("location") ?? undefined;
        throw new MeshworkBlobError(`blob ${method} answered with a redirect${res.status ? ` (HTTP ${res.status})` : ""}, which is not followed`, {
          details: { digest, status: res.status, url, reason: "redirect", ...(location === undefined ? {} : { location }) },
        });
      }
      try {
        return await handle(res, url);
      } catch (error) {
        if (error instanceof MeshworkBlobError) throw error;
        throw transportError(method, digest, url, error, timedOut, this.timeoutMs, res.status);
      }
    } catch (error) {
      if (error instanceof MeshworkBlobError) throw error;
      throw transportError(method, digest, url, error, timedOut, this.timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }
}

function transportError(method: string, digest: string, url: string, cause: unknown, timedOut: boolean, timeoutMs: number, status?: number) {
  const what = timedOut ? `timed out after ${timeoutMs} ms` : `failed: ${describe(cause)}`;
  return new MeshworkBlobError(`blob ${method} ${what}`, {
    details: { digest, ...(status === undefined ? {} : { status }), url },
    cause,
  });
}

/** "fetch failed (other side closed)": the message and the innermost cause's, which says what happened. */
function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  let inner: unknown = error;
  for (let i = 0; i < 5 && inner instanceof Error && inner.cause !== undefined; i++) inner = inner.cause;
  if (inner === error || !(inner instanceof Error)) return message;
  const code = (inner as { code?: string }).code;
  return `${message} (${inner.message}${code && !inner.message.includes(code) ? `, ${code}` : ""})`;
}

/** A response's body, when it is at most `maxBytes` long: a longer one is cancelled as soon as it shows. */
async function readAtMost(res: Response, digest: string, url: string, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw blobTooLarge(digest, declared, maxBytes, { status: res.status, url });
  }
  if (!res.body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let length = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.length;
    if (length > maxBytes) {
      await reader.cancel().catch(() => {});
      throw blobTooLarge(digest, length, maxBytes, { status: res.status, url });
    }
    parts.push(value);
  }
  return concatBytes(parts);
}

async function statusError(res: Response, digest: string, url: string, method: string): Promise<MeshworkBlobError> {
  let reason = "";
  try {
    if (method !== "HEAD") reason = (await res.text()).slice(0, 300);
  } catch {
    /* the status says enough */
  }
  try {
    const parsed = JSON.parse(reason) as { error?: unknown };
    if (typeof parsed.error === "string") reason = parsed.error;
  } catch {
    /* not JSON */
  }
  const what =
    res.status === 404 ? "blob not found" : res.status === 413 ? "blob too large for the server" : `blob ${method} failed with HTTP ${res.status}`;
  return new MeshworkBlobError(reason && !what.includes(reason) ? `${what}: ${reason}` : what, { details: { digest, status: res.status, url } });
}

// ---------------------------------------------------------------------------------------------------
// The embedded server
// ---------------------------------------------------------------------------------------------------

export interface BlobServerOptions {
  /** TCP port, 0 (default) for a free one. */
  port?: number;
  /** Interface to listen on (default 127.0.0.1: reachable from this machine only). */
  host?: string;
  /**
   * On a loopback `host`: the host names, besides the loopback ones, a request may name in its `Host`
   * header (e.g. the public name a reverse proxy that keeps the `Host` header forwards); others get
   * 403, see {@link foreignRequest}. Ignored on other interfaces, which answer any name.
   */
  allowedHosts?: string[];
  /**
   * Directory to keep blobs in, one file per blob named by its 64 hex digits (created if missing;
   * blobs survive restarts). Without it, blobs live in memory and die with the server.
   */
  dir?: string;
  /** Largest blob accepted, in bytes (default 256 MiB). */
  maxBytes?: number;
  /**
   * Serve only (GET, HEAD): a PUT gets 405 and stores nothing. For a server whose owner writes its
   * directory itself, as a provider node does (its outputs): anyone who can reach the port could
   * otherwise fill the disk with blobs that stay for the node's `keepBlobsSec`.
   */
  readOnly?: boolean;
  /**
   * Told of the server's own failures, which the client gets as a bare 500 (`request`: its method and
   * path), and of errors of the listening socket once it listens (`request` undefined; without this,
   * such an error would end the process). For the owner's log: the error may name local paths.
   */
  onError?: (error: unknown, request?: string) => void;
}

export interface BlobServer {
  /** Base URL to give {@link HttpBlobStore}, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/** Where the server keeps blobs: keyed by the 64 bare hex digits. */
interface Backend {
  /** Size of the blob, or undefined when missing. */
  size(hex: string): Promise<number | undefined>;
  /** Streams the blob into the response. */
  send(hex: string, res: ServerResponse): Promise<void>;
  /** Receives the body, hashing as it goes; resolves to the outcome. */
  receive(hex: string, req: IncomingMessage, maxBytes: number): Promise<"created" | "existed" | "mismatch" | "too-large">;
}

const TMP_SUFFIX = ".tmp";

/**
 * Feeds the request body to `sink` chunk by chunk; resolves to its length, or undefined as soon as it
 * exceeds `maxBytes`. The iterator is then left unfinished rather than closed, because closing it would
 * destroy the socket before the 413 is sent; the caller closes the connection after replying.
 */
async function readBody(req: IncomingMessage, maxBytes: number, sink: (chunk: Buffer) => void | Promise<void>): Promise<number | undefined> {
  const chunks = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let length = 0;
  for (;;) {
    const next = await chunks.next();
    if (next.done) return length;
    length += next.value.length;
    if (length > maxBytes) return undefined;
    await sink(next.value);
  }
}

class MemoryBackend implements Backend {
  readonly blobs = new Map<string, Buffer>();

  async size(hex: string) {
    return this.blobs.get(hex)?.length;
  }

  async send(hex: string, res: ServerResponse) {
    res.end(this.blobs.get(hex));
  }

  async receive(hex: string, req: IncomingMessage, maxBytes: number) {
    const hash = createHash("sha256");
    const parts: Buffer[] = [];
    const length = await readBody(req, maxBytes, (chunk) => {
      hash.update(chunk);
      parts.push(chunk);
    });
    if (length === undefined) return "too-large" as const;
    if (hash.digest("hex") !== hex) return "mismatch" as const;
    if (this.blobs.has(hex)) return "existed" as const;
    this.blobs.set(hex, Buffer.concat(parts, length));
    return "created" as const;
  }
}

class DirectoryBackend implements Backend {
  constructor(readonly dir: string) {}

  /** Creates the directory and removes temporary files a crash left behind. */
  async init() {
    await mkdir(this.dir, { recursive: true });
    for (const name of await readdir(this.dir)) {
      if (name.endsWith(TMP_SUFFIX)) await unlink(join(this.dir, name)).catch(() => {});
    }
  }

  async size(hex: string) {
    try {
      const s = await stat(join(this.dir, hex));
      return s.isFile() ? s.size : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  async send(hex: string, res: ServerResponse) {
    await markUsed(join(this.dir, hex));
    await pipeline(createReadStream(join(this.dir, hex)), res);
  }

  async receive(hex: string, req: IncomingMessage, maxBytes: number) {
    return writeBlobFile(this.dir, hex, async (file) => {
      const hash = createHash("sha256");
      const length = await readBody(req, maxBytes, async (chunk) => {
        hash.update(chunk);
        await file.write(chunk);
      });
      if (length === undefined) return "too-large" as const;
      if (hash.digest("hex") !== hex) return "mismatch" as const;
      return "ok" as const;
    });
  }
}

/**
 * Writes blob `hex` into `dir` the safe way: into a temporary file in the same directory, synced, then
 * renamed, so a reader never sees half a blob and a crash leaves only a *.tmp file (removed at the
 * server's next start). `fill` writes the bytes; any outcome but "ok" discards the file.
 */
async function writeBlobFile<T extends string>(
  dir: string,
  hex: string,
  fill: (file: FileHandle) => Promise<T | "ok">,
): Promise<Exclude<T, "ok"> | "created" | "existed"> {
  const tmp = join(dir, `.${hex}.${process.pid}.${randomBytes(6).toString("hex")}${TMP_SUFFIX}`);
  const file = await open(tmp, "wx");
  let keep = false;
  try {
    const outcome = await fill(file);
    if (outcome !== "ok") return outcome as Exclude<T, "ok">;
    await file.sync();
    await file.close();
    const existed = await stat(join(dir, hex)).then(
      () => true,
      () => false,
    );
    await rename(tmp, join(dir, hex));
    keep = true;
    return existed ? "existed" : "created";
  } finally {
    if (!keep) {
      await file.close().catch(() => {});
      await unlink(tmp).catch(() => {});
    }
  }
}

/**
 * Marks a blob file as used now (its modification time, which {@link DirectoryBlobStore.prune} reads).
 * Resolves to whether the file is there (a file it may not touch, on a read-only mount or another
 * user's, is there all the same).
 */
async function markUsed(path: string): Promise<boolean> {
  const now = new Date();
  try {
    await utimes(path, now, now);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    return stat(path).then(
      (s) => s.isFile(),
      () => false,
    );
  }
}

/** How long a file set aside by a prune may stay before the next prune removes it (ms). */
const ASIDE_TTL_MS = 3_600_000;
/** A file set aside: `.<digest hex>.<ms since epoch>.<random>.aside.tmp`. */
const ASIDE_RE = /^\.[0-9a-f]{64}\.(\d+)\.[0-9a-f]+\.aside\.tmp$/;

/** What {@link DirectoryBlobStore.prune} removed and kept, and the files it could not remove. */
export interface PruneReport {
  removed: number;
  removedBytes: number;
  kept: number;
  keptBytes: number;
  failed: number;
}

/**
 * A blob store in a local directory, in the layout `startBlobServer({ dir })` serves: one file per blob
 * named by its digest's 64 hex digits, written safely (temporary file, sync, rename). A provider node
 * writes its outputs here directly — no HTTP round trip, no second hash — while its blob server hands
 * them to consumers. It trusts a `digest` passed to `put` (the caller is this process) and verifies
 * every blob it reads: a file that does not hash to its name is removed, and its `get` throws.
 *
 * A blob's file time is when it was last used: written, put again, read by `get` or served by a blob
 * server over the same directory. {@link prune} removes the blobs unused for longer than a given time.
 */
export class DirectoryBlobStore implements BlobStore {
  constructor(readonly dir: string) {}

  /**
   * Removes every blob unused for `unusedForMs` or longer (by its file time, see the class comment)
   * unless `keep(digest)` says otherwise; temporary files and files not named like a blob are left
   * alone. With `maxBytes`, it then removes the least recently used of the blobs left that `keep` does
   * not keep, oldest first, until the blobs left take `maxBytes` or less (the blobs kept may take more
   * on their own). A blob removed here that is needed again is fetched again: a caching store brings
   * it back from its sources. `stop()`, asked between files, ends it early. A file it cannot remove is
   * counted in `failed` and skipped. `dryRun`: removes nothing, and reports what it would remove.
   *
   * Safe beside this store's `put` and a blob server on the same directory, also in other processes:
   * an old file is first renamed aside (atomic), then looked at again; one used meanwhile (a put or a
   * read marks it) is renamed back, and a put or an upload landing meanwhile writes a new file. A read
   * in that instant finds the blob missing (a caching store fetches it again); one already reading
   * reads on.
   */
  async prune(options: {
    unusedForMs: number;
    keep?: (digest: string) => boolean;
    maxBytes?: number;
    now?: number;
    stop?: () => boolean;
    dryRun?: boolean;
  }): Promise<PruneReport> {
    const cutoff = (options.now ?? Date.now()) - options.unusedForMs;
    const report: PruneReport = { removed: 0, removedBytes: 0, kept: 0, keptBytes: 0, failed: 0 };
    await this.#removeStaleAside(Date.now());
    /** The blobs left that `keep` does not keep: what `maxBytes` removes, least recently used first. */
    const removable: { name: string; usedAt: number; size: number }[] = [];
    /** Removes blob `name` unless it was used meanwhile (`usedSince` its file time); counts it as removed or failed. */
    const remove = async (name: string, size: number, usedSince: (usedAt: number) => boolean) => {
      const outcome = options.dryRun ? { removed: true, size } : await this.#removeUnless(name, async (aside) => usedSince((await stat(aside)).mtimeMs));
      if (outcome === "failed") report.failed++;
      else if (outcome !== "gone" && outcome.removed) {
        report.removed++;
        report.removedBytes += outcome.size;
      }
      return outcome;
    };
    for await (const { name, stats } of this.#files()) {
      if (options.stop?.()) return report;
      const keep = options.keep?.("0x" + name) ?? false;
      let size = stats.size;
      if (!keep && stats.mtimeMs < cutoff) {
        const outcome = await remove(name, size, (usedAt) => usedAt >= cutoff);
        if (outcome === "failed" || outcome === "gone" || outcome.removed) continue;
        size = outcome.size; // used after it was listed: kept, and not the least recently used
      } else if (!keep) removable.push({ name, usedAt: stats.mtimeMs, size });
      report.kept++;
      report.keptBytes += size;
    }
    if (options.maxBytes === undefined) return report;
    removable.sort((x, y) => x.usedAt - y.usedAt);
    for (const { name, usedAt, size } of removable) {
      if (report.keptBytes <= options.maxBytes || options.stop?.()) break;
      const outcome = await remove(name, size, (at) => at > usedAt);
      if (outcome === "gone" || (outcome !== "failed" && outcome.removed)) {
        report.kept--;
        report.keptBytes -= size;
      }
    }
    return report;
  }

  /**
   * Removes blob file `name` unless `keep`, asked about it once it is out of the way, says otherwise —
   * without ever removing a copy another writer put there meanwhile: the file is renamed aside
   * (atomic), `keep` looks at the renamed file, and a file kept is renamed back (over a copy put there
   * meanwhile, if any: the same bytes). "gone": there was no such file; "failed": it could not be
   * renamed, or was left aside (removed by a prune an hour later, or at the blob server's next start).
   */
  async #removeUnless(name: string, keep: (aside: string) => Promise<boolean>): Promise<{ removed: boolean; size: number } | "gone" | "failed"> {
    const path = join(this.dir, name);
    const aside = join(this.dir, `.${name}.${Date.now()}.${randomBytes(6).toString("hex")}.aside${TMP_SUFFIX}`);
    try {
      await rename(path, aside);
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "ENOENT" ? "gone" : "failed";
    }
    try {
      const { size } = await stat(aside);
      const kept = await keep(aside);
      await (kept ? rename(aside, path) : unlink(aside));
      return { removed: !kept, size };
    } catch {
      return "failed";
    }
  }

  /** Removes the files prunes set aside and could not put back or remove, once an hour old. */
  async #removeStaleAside(now: number): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      const at = ASIDE_RE.exec(name)?.[1];
      if (at !== undefined && now - Number(at) > ASIDE_TTL_MS) await unlink(join(this.dir, name)).catch(() => undefined);
    }
  }

  /** How many blobs the directory holds, and their bytes. */
  async usage(): Promise<{ blobs: number; bytes: number }> {
    const usage = { blobs: 0, bytes: 0 };
    for await (const { stats } of this.#files()) {
      usage.blobs++;
      usage.bytes += stats.size;
    }
    return usage;
  }

  /** The blob files (named like a digest) in the directory, none when it does not exist. */
  async *#files() {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw new MeshworkBlobError("cannot list the blob directory", { cause: error, details: { path: this.dir } });
    }
    for (const name of names) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const stats = await stat(join(this.dir, name)).catch(() => undefined);
      if (stats?.isFile()) yield { name, stats };
    }
  }

  async put(bytes: Uint8Array, digest?: string): Promise<string> {
    const key = digest === undefined ? digestOf(bytes) : normalizeDigest(digest);
    // Marking it used is the test that it is there: a prune then leaves it in place (see prune).
    if (await markUsed(join(this.dir, key.slice(2)))) return key;
    await mkdir(this.dir, { recursive: true });
    await writeBlobFile(this.dir, key.slice(2), async (file) => {
      await file.writeFile(bytes);
      return "ok" as const;
    });
    return key;
  }

  async get(digest: string, options: BlobGetOptions = {}): Promise<Uint8Array> {
    const key = normalizeDigest(digest);
    const path = join(this.dir, key.slice(2));
    let buffer: Buffer;
    try {
      if (options.maxBytes !== undefined) {
        const { size } = await stat(path);
        if (size > options.maxBytes) throw blobTooLarge(key, size, options.maxBytes, { path });
      }
      buffer = await readFile(path);
    } catch (cause) {
      if (cause instanceof MeshworkBlobError) throw cause;
      if ((cause as NodeJS.ErrnoException).code === "ENOENT") throw new MeshworkBlobError("blob not found", { details: { digest: key } });
      throw new MeshworkBlobError("cannot read the blob file", { cause, details: { digest: key, path } });
    }
    const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    try {
      verifyBlob(key, bytes, { path });
    } catch (error) {
      // Not this digest's bytes (changed on disk): removed, so that it is neither served nor kept
      // in place of the real blob, which a put or a caching store's source can then bring back — and
      // if a put already has, between the read and now, its copy stays.
      await this.#removeUnless(key.slice(2), async (aside) => digestOf(await readFile(aside)) === key);
      throw error;
    }
    await markUsed(path);
    return bytes;
  }

  async has(digest: string): Promise<boolean> {
    const key = normalizeDigest(digest);
    return stat(join(this.dir, key.slice(2))).then(
      (s) => s.isFile(),
      () => false,
    );
  }
}

/**
 * Starts the embedded blob server (see the module comment for the protocol). It recomputes the digest of
 * every upload and stores nothing that does not match; reads are served as stored (clients verify).
 * @throws {MeshworkConfigError} when it cannot listen on `host`:`port` (the port in use, say).
 *
 * @example
 * ```ts
 * const server = await startBlobServer({ dir: ".meshwork/blobs" });
 * const store = new HttpBlobStore(server.url);
 * const digest = await store.put(new TextEncoder().encode("hello"));
 * await server.close();
 * ```
 */
export async function startBlobServer(options: BlobServerOptions = {}): Promise<BlobServer> {
  const { port = 0, host = "127.0.0.1", dir, maxBytes = 256 * 1024 * 1024, allowedHosts = [], readOnly = false } = options;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`maxBytes must be a non-negative integer (got ${maxBytes})`);
  let backend: Backend;
  if (dir === undefined) backend = new MemoryBackend();
  else {
    const d = new DirectoryBackend(dir);
    await d.init();
    backend = d;
  }

  const loopback = isLoopbackHost(host);
  const server = createServer((req, res) => {
    const refused = loopback ? foreignRequest(req, allowedHosts) : undefined;
    if (refused) {
      req.resume();
      return reply(res, 403, { error: refused });
    }
    // A failure of the server's own (a file it cannot write) is not the client's business: its message
    // names files and directories of this machine.
    handle(backend, maxBytes, readOnly, req, res).catch((error) => {
      // A client that went away mid-download is no failure of the server's: nothing to tell. Told by the
      // error, not by the socket: a file that fails to read mid-download destroys the socket too.
      const clientGone = CLIENT_GONE.has((error as NodeJS.ErrnoException).code ?? "");
      if (!clientGone) options.onError?.(error, `${req.method} ${req.url}`);
      if (!res.headersSent) reply(res, 500, { error: "internal error" });
      else res.destroy();
    });
  });

  await listen(server, port, host, "the blob server");
  server.on("error", (error) => options.onError?.(error));
  const address = server.address() as AddressInfo;
  const shown = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  const url = `http://${shown.includes(":") ? `[${shown}]` : shown}:${address.port}`;

  return {
    url,
    port: address.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/**
 * Starts `server` listening on `host`:`port`; `what` names it in the error. A port another program
 * holds (EADDRINUSE) or one this user may not take (EACCES) rejects with a {@link MeshworkConfigError}
 * naming the address (`details`: `host`, `port`, `code`) rather than an unhandled 'error' event.
 * @internal
 */
export async function listen(server: Server, port: number, host: string, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      const why =
        error.code === "EADDRINUSE" ? "the port is in use (by another program, or another node on this machine)" : error.code === "EACCES" ? "not allowed to listen there" : error.message;
      reject(new MeshworkConfigError(`${what} cannot listen on ${host}:${port}: ${why}`, { cause: error, details: { host, port, code: error.code } }));
    };
    server.once("error", failed);
    server.listen(port, host, () => {
      server.off("error", failed);
      resolve();
    });
  });
}

/** Whether `host` (a host name, an IPv4 or IPv6 address, bracketed or not) is this machine's loopback. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Why a server that listens on a loopback address only, for this machine's programs, refuses `req`
 * (undefined: it does not):
 * - a `Host` header naming anything but a loopback name or address (or one of `allowedHosts`): a web
 *   page whose own domain now resolves to 127.0.0.1 (DNS rebinding) sends its domain there, and would
 *   otherwise read and write as if it were this machine;
 * - a browser's `Sec-Fetch-Site` of `cross-site` or `same-site`: a page of another site (another port
 *   of 127.0.0.1 or localhost included), which could not read the answer anyway but could upload, or
 *   learn which blobs this node holds from whether a request fails.
 * Requests from programs (no `Sec-Fetch-Site`) and from the operator's address bar (`none`) pass.
 */
export function foreignRequest(req: IncomingMessage, allowedHosts: readonly string[] = []): string | undefined {
  let hostname: string;
  try {
    hostname = new URL(`http://${req.headers.host ?? ""}`).hostname;
  } catch {
    hostname = "";
  }
  if (!isLoopbackHost(hostname) && !allowedHosts.some((h) => h.toLowerCase() === hostname)) {
    return `host ${JSON.stringify(req.headers.host ?? "")} not served: this server answers requests for this machine (127.0.0.1, localhost) only`;
  }
  const site = req.headers["sec-fetch-site"];
  if (site === "cross-site" || site === "same-site") return "requests from web pages of other sites are not served";
  return undefined;
}

/** The errors of a download whose client went away (the response closed before its end, or its socket reset). */
const CLIENT_GONE: ReadonlySet<string> = new Set(["ERR_STREAM_PREMATURE_CLOSE", "ECONNRESET", "EPIPE"]);

function reply(res: ServerResponse, status: number, body?: Record<string, unknown>, headers: Record<string, string> = {}) {
  const text = body ? JSON.stringify(body) : "";
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function handle(backend: Backend, maxBytes: number, readOnly: boolean, req: IncomingMessage, res: ServerResponse) {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  const m = /^\/blobs\/([^/]+)$/.exec(path);
  if (!m) {
    req.resume();
    return reply(res, 404, { error: "not found: the API is /blobs/{digest}" });
  }
  const method = req.method ?? "GET";
  if (method !== "GET" && method !== "HEAD" && (method !== "PUT" || readOnly)) {
    req.resume();
    const allow = readOnly ? "GET, HEAD" : "GET, HEAD, PUT";
    const why = readOnly && method === "PUT" ? "this server only serves its own blobs" : `method ${method} not allowed`;
    return reply(res, 405, { error: why }, { allow });
  }
  const dm = DIGEST_RE.exec(decodedSegment(m[1]));
  if (!dm) {
    req.resume();
    return reply(res, 400, { error: "malformed digest: expected 64 hex digits, optionally 0x-prefixed" });
  }
  const hex = dm[1].toLowerCase();
  const digest = "0x" + hex;

  if (method === "PUT") {
    const declared = Number(req.headers["content-length"] ?? NaN);
    if (declared > maxBytes) return tooLarge(req, res, maxBytes);
    const outcome = await backend.receive(hex, req, maxBytes);
    if (outcome === "too-large") return tooLarge(req, res, maxBytes);
    if (outcome === "mismatch") return reply(res, 400, { error: "digest mismatch: the body does not hash to the digest in the URL", digest });
    const size = await backend.size(hex);
    return reply(res, outcome === "created" ? 201 : 200, { digest, size });
  }

  req.resume();
  const size = await backend.size(hex);
  if (size === undefined) return reply(res, 404, { error: "blob not found", digest });
  const headers = {
    "content-type": "application/octet-stream",
    "content-length": String(size),
    etag: `"${hex}"`,
    "cache-control": "public, max-age=31536000, immutable",
  };
  res.writeHead(200, headers);
  if (method === "HEAD") return void res.end();
  await backend.send(hex, res);
}

/** A URL path segment, decoded; "" for a bad `%` escape (which then reads as a malformed digest). */
function decodedSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return "";
  }
}

/** 413, then the connection is closed so an oversized upload is not read any further. */
function tooLarge(req: IncomingMessage, res: ServerResponse, maxBytes: number) {
  reply(res, 413, { error: `blob larger than the server's limit of ${maxBytes} bytes`, maxBytes }, { connection: "close" });
  res.once("finish", () => req.socket.destroySoon?.());
}
