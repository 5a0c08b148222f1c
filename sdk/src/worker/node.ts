/**
 * Assembles a provider node from its config: the keystore's wallet on a retrying RPC provider, the SDK,
 * the blob store (its own directory served on 127.0.0.1, plus the consumers' stores it fetches from),
 * the detected runtimes, the local state, logs and metrics. What `meshwork-worker start` runs.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { JsonRpcProvider, Wallet } from "ethers";
import pino, { type Logger } from "pino";
import { DirectoryBlobStore, HttpBlobStore, normalizeDigest, startBlobServer, verifyBlob, type BlobGetOptions, type BlobServer, type BlobStore } from "../blob.js";
import { Meshwork } from "../client.js";
import { MeshworkBlobError, MeshworkConfigError } from "../errors.js";
import { parseWorkerConfig, runtimeThreadsOf, type WorkerConfig } from "./config.js";
import { WorkerMetrics } from "./metrics.js";
import { probeRuntimes, setRuntimeThreads } from "./runtimes/index.js";
import { WorkerState } from "./state.js";
import { Worker, type CheatMode } from "./worker.js";

/** Reads and validates a worker config file. @throws {MeshworkConfigError} {@link MeshworkValidationError} */
export function loadWorkerConfig(path: string): WorkerConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new MeshworkConfigError(`cannot read worker config ${path}`, { cause, details: { path } });
  }
  return parseWorkerConfig(json);
}

/** Decrypts the keystore (ethers JSON wallet). @throws {MeshworkConfigError} on a wrong password. */
export async function openKeystore(path: string, password: string): Promise<Wallet> {
  let json: string;
  try {
    json = readFileSync(path, "utf8");
  } catch (cause) {
    throw new MeshworkConfigError(`cannot read keystore ${path}`, { cause, details: { path } });
  }
  try {
    const wallet = await Wallet.fromEncryptedJson(json, password);
    return new Wallet(wallet.privateKey);
  } catch (cause) {
    throw new MeshworkConfigError("cannot decrypt the keystore: wrong password (MESHWORK_PASSWORD_FILE or MESHWORK_PASSWORD)?", { cause });
  }
}

/**
 * Local store first; a blob it lacks, or cannot read back verified, is fetched from the sources,
 * verified here (once, whatever the source does) and kept. What the worker
 * stores (outputs, manifests) also goes to the sources, best effort, so consumers find it at the
 * gateway they use.
 */
export class CachingBlobStore implements BlobStore {
  constructor(
    readonly local: BlobStore,
    readonly sources: BlobStore[],
  ) {}

  async put(bytes: Uint8Array, known?: string): Promise<string> {
    const digest = await this.local.put(bytes, known);
    await Promise.all(this.sources.map((s) => s.put(bytes, digest).catch(() => undefined)));
    return digest;
  }

  async has(digest: string): Promise<boolean> {
    if (await this.local.has(digest)) return true;
    for (const s of this.sources) if (await s.has(digest).catch(() => false)) return true;
    return false;
  }

  async get(digest: string, options: BlobGetOptions = {}): Promise<Uint8Array> {
    let last: unknown;
    if (await this.local.has(digest).catch(() => false)) {
      try {
        return await this.local.get(digest, options);
      } catch (error) {
        last = error; // a local copy that fails verification (a DirectoryBlobStore removes it): fetched again
      }
    }
    for (const source of this.sources) {
      try {
        const bytes = await source.get(digest, { ...options, verify: false });
        verifyBlob(digest, bytes); // checked here, whatever the source (and the caller) does: it is kept under this digest
        await this.local.put(bytes, digest);
        return bytes;
      } catch (error) {
        last = error;
      }
    }
    throw new MeshworkBlobError("blob not found in the local store or any source", { cause: last, details: { digest: normalizeDigest(digest) } });
  }
}

export interface ProviderNode {
  worker: Worker;
  mw: Meshwork;
  wallet: Wallet;
  blobServer: BlobServer;
  metricsUrl?: string;
  logger: Logger;
  stop(): Promise<void>;
}

/**
 * Builds everything a provider node needs and starts its worker.
 * @example
 * ```ts
 * const node = await startProviderNode(loadWorkerConfig("worker.json"), process.env.MESHWORK_PASSWORD!);
 * process.on("SIGINT", () => node.stop());
 * ```
 */
export async function startProviderNode(
  config: WorkerConfig,
  password: string,
  options: { logger?: Logger; cheat?: CheatMode } = {},
): Promise<ProviderNode> {
  const logger = options.logger ?? pino({ name: "meshwork-worker" });
  const provider = new JsonRpcProvider(config.rpcUrl, undefined, { staticNetwork: true, cacheTimeout: -1, pollingInterval: config.pollMs });
  // What is open is closed again, last first, by stop() and when a later step fails: a node that
  // cannot start throws and leaves nothing listening or polling behind.
  const opened: (() => unknown)[] = [() => provider.destroy()];
  try {
    const wallet = (await openKeystore(config.keystore, password)).connect(provider);
    const blobDir = join(config.dataDir, "blobs");
    // Read-only: the node writes its directory itself, and an upload from anyone who can reach the
    // port would stay on its disk for keepBlobsSec.
    const blobServer = await startBlobServer({
      port: config.blobPort,
      dir: blobDir,
      maxBytes: config.maxBlobBytes,
      readOnly: true,
      onError: (error, request) => logger.warn({ err: error, request }, "the blob server failed"),
    }).catch((error) => {
      throw withSetting(error, "blobPort", "to a free port");
    });
    opened.push(() => blobServer.close());
    // Both ports are taken before anything slower: one in use fails the start at once.
    const metrics = new WorkerMetrics({ defaultMetrics: true });
    const served = config.metricsPort
      ? await metrics.serve(config.metricsPort, undefined, (error) => logger.warn({ err: error }, "the metrics server failed")).catch((error) => {
          throw withSetting(error, "metricsPort", "to a free port, or 0 to serve no metrics");
        })
      : undefined;
    if (served) opened.push(() => new Promise((resolve) => served.server.close(resolve)));
    // The node writes and reads its own blobs in the directory its server serves: no HTTP round trip,
    // and what it hashed already is not hashed again.
    const local = new DirectoryBlobStore(blobDir);
    const store = new CachingBlobStore(
      local,
      config.blobSources.map((url) => new HttpBlobStore(url)),
    );
    const sending = {
      timeoutMs: config.txTimeoutSec * 1000,
      onReprice: (action: string, stuck: { hash: string; nonce: number }, again: { hash: string }) =>
        logger.warn({ action, nonce: stuck.nonce, stuck: stuck.hash, again: again.hash }, `${action} not mined in ${config.txTimeoutSec} s: sent again with higher fees`),
    };
    const mw = await Meshwork.connect({ runner: wallet, network: config.network, deploymentsDir: config.deploymentsDir, blobStore: store, sending });
    const runtimeThreads = runtimeThreadsOf(config);
    setRuntimeThreads(runtimeThreads);
    const probed = await probeRuntimes(config.runtimes, { onnx: config.onnx });
    for (const { runtime, capabilities } of probed) logger.info({ runtime: runtime.name, ...capabilities }, "runtime");
    const runtimes = probed.filter((p) => p.capabilities.available).map((p) => p.runtime);
    const state = new WorkerState(join(config.dataDir, "worker.db"));
    opened.push(() => state.close());
    const blobRetention = { store: local, keepSec: config.keepBlobsSec, maxBytes: config.maxBlobDirBytes };
    const worker = new Worker({ mw, store, state, runtimes, config, logger, metrics, cheat: options.cheat, blobRetention });
    await worker.start();
    logger.info({ blobs: blobServer.url, metrics: served?.url, chainId: String(mw.chainId), runtimeThreads }, "provider node up");
    return {
      worker,
      mw,
      wallet,
      blobServer,
      metricsUrl: served?.url,
      logger,
      async stop() {
        await worker.stop();
        for (const close of [...opened].reverse()) await close();
      },
    };
  } catch (error) {
    for (const close of [...opened].reverse()) await Promise.resolve().then(close).catch(() => undefined);
    throw error;
  }
}

/** A server's error for a port it cannot listen on (blob.ts's `listen`), with the config key that sets the port. */
function withSetting(error: unknown, key: string, fix: string): unknown {
  if (!(error instanceof MeshworkConfigError) || error.details.port === undefined) return error;
  return new MeshworkConfigError(`${error.shortMessage}: set ${key} in the worker config ${fix}`, { cause: error, details: { ...error.details, setting: key } });
}
