/**
 * The content-addressed blob store (sdk/src/blob.ts): digests, the in-memory store, the HTTP client
 * against the embedded server, and the client against misbehaving servers (tampered bytes, dropped
 * connections, silence).
 */
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { utimesSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Gauge } from "prom-client";
import {
  DirectoryBlobStore,
  HttpBlobStore,
  MemoryBlobStore,
  digestOf,
  isDigest,
  normalizeDigest,
  startBlobServer,
  verifyBlob,
  type BlobServer,
  type BlobStore,
} from "../../sdk/src/blob.js";
import { MeshworkBlobError, MeshworkConfigError, MeshworkError, MeshworkVerificationError } from "../../sdk/src/errors.js";
import { fetchResult, publishResult } from "../../sdk/src/results.js";
import { WorkerMetrics } from "../../sdk/src/worker/metrics.js";
import { CachingBlobStore } from "../../sdk/src/worker/node.js";
import { rejection } from "../helpers/rejection.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const ABC = "0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; // sha256("abc")
const EMPTY = "0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; // sha256("")


/** A throwaway HTTP server with a hand-written handler: the misbehaving blob server. */
async function evilServer(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** One request to `url` with exactly these headers (fetch would set its own `Host`): its status and body. */
function rawRequest(url: string, method: string, headers: Record<string, string>, body?: Uint8Array): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, ...(body ? { "content-length": String(body.length) } : {}) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The behaviour every BlobStore shares. */
function behavesLikeABlobStore(make: () => Promise<{ store: BlobStore; done?: () => Promise<void> }>) {
  let store: BlobStore;
  let done: (() => Promise<void>) | undefined;
  beforeEach(async () => ({ store, done } = await make()));
  afterEach(async () => done?.());

  it("refuses a blob longer than a get's maxBytes (reason too-large), and returns one within it", async () => {
    const digest = await store.put(utf8("abc"));
    expect(await store.get(digest, { maxBytes: 3 })).to.deep.equal(utf8("abc"));
    const error = await rejection(store.get(digest, { maxBytes: 2 }));
    expect(error).to.be.instanceOf(MeshworkBlobError);
    expect(error.details).to.include({ digest, reason: "too-large", maxBytes: 2 });
    expect(await store.get(digest)).to.deep.equal(utf8("abc")); // still there, whole
  });

  it("puts and gets bytes back by their canonical digest", async () => {
    const digest = await store.put(utf8("abc"));
    expect(digest).to.equal(ABC);
    expect(await store.get(digest)).to.deep.equal(utf8("abc"));
    expect(await store.has(digest)).to.equal(true);
  });

  it("accepts the bare and the upper-case digest forms", async () => {
    await store.put(utf8("abc"));
    expect(await store.get(ABC.slice(2))).to.deep.equal(utf8("abc"));
    expect(await store.has(ABC.slice(2).toUpperCase())).to.equal(true);
  });

  it("stores the empty blob and a 1 MiB random one", async () => {
    expect(await store.put(new Uint8Array())).to.equal(EMPTY);
    expect(await store.get(EMPTY)).to.have.length(0);
    const big = new Uint8Array(randomBytes(1 << 20));
    const digest = await store.put(big);
    expect(Buffer.from(await store.get(digest)).equals(big)).to.equal(true);
  });

  it("takes the digest the caller already has, in either form, and answers the canonical one", async () => {
    expect(await store.put(utf8("abc"), ABC.slice(2).toUpperCase())).to.equal(ABC);
    expect(await store.get(ABC)).to.deep.equal(utf8("abc"));
  });

  it("is idempotent", async () => {
    expect(await store.put(utf8("abc"))).to.equal(await store.put(utf8("abc")));
  });

  it("says a missing blob is missing", async () => {
    const missing = digestOf(utf8("never stored"));
    expect(await store.has(missing)).to.equal(false);
    const error = await rejection(store.get(missing));
    expect(error).to.be.instanceOf(MeshworkBlobError).and.instanceOf(MeshworkError);
    expect(error.shortMessage).to.match(/not found/);
    expect(error.details.digest).to.equal(missing);
  });

  it("rejects a malformed digest", async () => {
    for (const bad of ["", "0x1234", "zz".repeat(32), "0x" + "ab".repeat(33)]) {
      const error = await rejection(store.get(bad));
      expect(error, bad).to.be.instanceOf(MeshworkBlobError);
      expect(error.shortMessage).to.match(/malformed blob digest/);
    }
  });
}

describe("blob store", () => {
  describe("digests", () => {
    it("are SHA-256, 0x-prefixed lower-case hex", () => {
      expect(digestOf(utf8("abc"))).to.equal(ABC);
      expect(digestOf(new Uint8Array())).to.equal(EMPTY);
    });

    it("normalise from either form and reject anything else", () => {
      expect(normalizeDigest(ABC.slice(2))).to.equal(ABC);
      expect(normalizeDigest(ABC.toUpperCase().replace("0X", "0x"))).to.equal(ABC);
      expect(isDigest(ABC) && isDigest(ABC.slice(2))).to.equal(true);
      expect(isDigest("0x" + ABC)).to.equal(false);
      expect(() => normalizeDigest(ABC + "00")).to.throw(MeshworkBlobError, /malformed/);
    });

    it("verifyBlob throws with the actual digest on a mismatch", () => {
      verifyBlob(ABC, utf8("abc"));
      try {
        verifyBlob(ABC, utf8("abd"));
        expect.fail("no error");
      } catch (e: any) {
        expect(e).to.be.instanceOf(MeshworkBlobError);
        expect(e.details).to.include({ digest: ABC, actual: digestOf(utf8("abd")) });
      }
    });
  });

  describe("MemoryBlobStore", () => {
    behavesLikeABlobStore(async () => ({ store: new MemoryBlobStore() }));

    it("keeps its own copy of the bytes, a Node Buffer's too", async () => {
      for (const bytes of [utf8("abc"), Buffer.from("abc")]) {
        const store = new MemoryBlobStore();
        const digest = await store.put(bytes);
        bytes[0] = 0;
        (await store.get(digest))[1] = 0;
        expect(await store.get(digest)).to.deep.equal(utf8("abc"));
        expect(store.size).to.equal(1);
      }
    });
  });

  describe("HttpBlobStore + startBlobServer (in memory)", () => {
    behavesLikeABlobStore(async () => {
      const server = await startBlobServer();
      return { store: new HttpBlobStore(server.url, { timeoutMs: 5_000 }), done: server.close };
    });

    it("sends a wrong digest given to put as it is: the server refuses it (400) and stores nothing", async () => {
      const server = await startBlobServer();
      try {
        const store = new HttpBlobStore(server.url, { timeoutMs: 5_000 });
        const error = await rejection(store.put(utf8("abd"), ABC));
        expect(error).to.be.instanceOf(MeshworkBlobError);
        expect(error.details).to.include({ digest: ABC, status: 400 });
        expect(await store.has(ABC)).to.equal(false);
        expect(await store.has(digestOf(utf8("abd")))).to.equal(false);
      } finally {
        await server.close();
      }
    });
  });

  describe("DirectoryBlobStore", () => {
    let dir: string;
    before(async () => (dir = await mkdtemp(join(tmpdir(), "meshwork-dirstore-"))));
    after(async () => rm(dir, { recursive: true, force: true }));

    behavesLikeABlobStore(async () => ({ store: new DirectoryBlobStore(await mkdtemp(join(dir, "s-"))) }));

    it("creates its directory, keeps one digest-named file per blob and no temporary file", async () => {
      const where = join(dir, "new", "blobs");
      const store = new DirectoryBlobStore(where);
      const bytes = new Uint8Array(randomBytes(100_000));
      const digest = await store.put(bytes);
      expect(await readdir(where)).to.deep.equal([digest.slice(2)]);
      expect(new Uint8Array(await readFile(join(where, digest.slice(2))))).to.deep.equal(bytes);
    });

    it("shares its directory with the blob server: what one writes, the other serves", async () => {
      const where = await mkdtemp(join(dir, "shared-"));
      const server = await startBlobServer({ dir: where });
      try {
        const local = new DirectoryBlobStore(where);
        const http = new HttpBlobStore(server.url, { timeoutMs: 5_000 });
        expect(await http.get(await local.put(utf8("abc")))).to.deep.equal(utf8("abc"));
        expect(await local.get(await http.put(utf8("abd")))).to.deep.equal(utf8("abd"));
      } finally {
        await server.close();
      }
    });

    it("refuses a blob whose file was changed on disk, naming the file, and removes it so a put can restore it", async () => {
      const where = await mkdtemp(join(dir, "tampered-"));
      const store = new DirectoryBlobStore(where);
      await store.put(utf8("abc"));
      await writeFile(join(where, ABC.slice(2)), utf8("abd"));
      const error = await rejection(store.get(ABC));
      expect(error).to.be.instanceOf(MeshworkBlobError);
      expect(error.details).to.include({ digest: ABC, actual: digestOf(utf8("abd")), path: join(where, ABC.slice(2)) });
      expect(await store.has(ABC)).to.equal(false);
      expect(await readdir(where)).to.deep.equal([]);
      await store.put(utf8("abc"));
      expect(await store.get(ABC)).to.deep.equal(utf8("abc"));
    });

    it("marks a blob used when it is put again, read or served, and prunes the blobs unused for long, except those it is told to keep", async () => {
      const where = await mkdtemp(join(dir, "prune-"));
      const store = new DirectoryBlobStore(where);
      const server = await startBlobServer({ dir: where });
      const DAY = 24 * 3600 * 1000;
      const blobs = ["read", "put again", "served", "kept", "old", "old too", "fresh"].map(utf8);
      const digests: string[] = [];
      for (const b of blobs) digests.push(await store.put(b));
      const ago = new Date(Date.now() - 10 * DAY);
      for (const d of digests.slice(0, 6)) await utimes(join(where, d.slice(2)), ago, ago);
      // Not blobs: a temporary file and a stray name are never touched.
      for (const name of [".x.tmp", "notes.txt"]) await writeFile(join(where, name), "x");
      await utimes(join(where, "notes.txt"), ago, ago);
      try {
        await store.get(digests[0]);
        await store.put(blobs[1]);
        expect(await new HttpBlobStore(server.url, { timeoutMs: 5_000 }).get(digests[2])).to.deep.equal(blobs[2]);
      } finally {
        await server.close();
      }
      for (const d of digests.slice(0, 3)) expect((await stat(join(where, d.slice(2)))).mtimeMs).to.be.above(Date.now() - DAY);
      const report = await store.prune({ unusedForMs: 7 * DAY, keep: (d) => d === digests[3] });
      const size = (i: number[]) => i.reduce((n, k) => n + blobs[k].length, 0);
      expect(report).to.deep.equal({ removed: 2, removedBytes: size([4, 5]), kept: 5, keptBytes: size([0, 1, 2, 3, 6]), failed: 0 });
      expect((await readdir(where)).sort()).to.deep.equal([...[0, 1, 2, 3, 6].map((i) => digests[i].slice(2)), ".x.tmp", "notes.txt"].sort());
      expect(await store.usage()).to.deep.equal({ blobs: 5, bytes: size([0, 1, 2, 3, 6]) });
      await rejection(store.get(digests[4]));
      // The kept blob, unused for 10 days, goes when nothing keeps it, and not before its time.
      expect((await store.prune({ unusedForMs: 11 * DAY })).removed).to.equal(0);
      expect((await store.prune({ unusedForMs: 9 * DAY })).removed).to.equal(1);
      // A missing directory has nothing to prune.
      expect(await new DirectoryBlobStore(join(where, "none")).prune({ unusedForMs: 0 })).to.deep.equal({ removed: 0, removedBytes: 0, kept: 0, keptBytes: 0, failed: 0 });
      expect(await new DirectoryBlobStore(join(where, "none")).usage()).to.deep.equal({ blobs: 0, bytes: 0 });
      // A directory that cannot be listed (a file in its place): a typed error naming it.
      const error = await rejection(new DirectoryBlobStore(join(where, digests[0].slice(2))).prune({ unusedForMs: 0 }));
      expect(error).to.be.instanceOf(MeshworkBlobError);
      expect(error.shortMessage).to.equal("cannot list the blob directory");
      expect(error.details.path).to.equal(join(where, digests[0].slice(2)));
    });

    it("with maxBytes, removes the least recently used blobs it is not told to keep until the rest fit, after the blobs unused for long", async () => {
      const where = await mkdtemp(join(dir, "prune-budget-"));
      const store = new DirectoryBlobStore(where);
      const MIN = 60_000;
      // Ten blobs of 100 bytes, blob i last used i minutes ago (blob 9: the least recently used).
      const digests: string[] = [];
      for (let i = 0; i < 10; i++) {
        const digest = await store.put(new Uint8Array(100).fill(i));
        const at = new Date(Date.now() - i * MIN);
        await utimes(join(where, digest.slice(2)), at, at);
        digests.push(digest);
      }
      const left = async () => (await readdir(where)).map((n) => digests.indexOf("0x" + n)).sort((a, b) => a - b);
      // Blob 9 is unused for over 8.5 minutes: it goes for that. Then 8 and 6 (7 is kept), oldest first, to fit 700.
      // A dry run says so and removes nothing.
      const planned = await store.prune({ unusedForMs: 8.5 * MIN, maxBytes: 700, keep: (d) => d === digests[7], dryRun: true });
      expect(planned).to.deep.equal({ removed: 3, removedBytes: 300, kept: 7, keptBytes: 700, failed: 0 });
      expect(await left()).to.have.length(10);
      const report = await store.prune({ unusedForMs: 8.5 * MIN, maxBytes: 700, keep: (d) => d === digests[7] });
      expect(report).to.deep.equal({ removed: 3, removedBytes: 300, kept: 7, keptBytes: 700, failed: 0 });
      expect(await left()).to.deep.equal([0, 1, 2, 3, 4, 5, 7]);
      // Already within: nothing goes.
      expect(await store.prune({ unusedForMs: Number.MAX_SAFE_INTEGER, maxBytes: 700 })).to.include({ removed: 0, kept: 7 });
      // The blobs kept may take more than maxBytes on their own: every other one goes, and no more.
      const kept = new Set([digests[0], digests[1]]);
      const tight = await store.prune({ unusedForMs: Number.MAX_SAFE_INTEGER, maxBytes: 100, keep: (d) => kept.has(d) });
      expect(tight).to.deep.equal({ removed: 5, removedBytes: 500, kept: 2, keptBytes: 200, failed: 0 });
      expect(await left()).to.deep.equal([0, 1]);
      // A blob used after it was listed (here: inside keep, asked before the removals) is not the least
      // recently used any more: it stays, and the next one goes in its place.
      const touched = await store.prune({
        unusedForMs: Number.MAX_SAFE_INTEGER,
        maxBytes: 100,
        keep: (d) => {
          if (d === digests[1]) utimesSync(join(where, d.slice(2)), new Date(), new Date());
          return false;
        },
      });
      expect(touched).to.deep.equal({ removed: 1, removedBytes: 100, kept: 1, keptBytes: 100, failed: 0 });
      expect(await left()).to.deep.equal([1]);
    });

    it("prunes safely beside puts: a blob put again while it is pruned is there once the put resolves; one used after it was listed stays", async () => {
      const where = await mkdtemp(join(dir, "prune-race-"));
      const store = new DirectoryBlobStore(where);
      const blobs = Array.from({ length: 200 }, (_, i) => utf8(`blob ${i}`));
      const digests: string[] = [];
      for (const b of blobs) digests.push(await store.put(b));
      const ago = new Date(Date.now() - 3_600_000);
      for (const d of digests) await utimes(join(where, d.slice(2)), ago, ago);
      // Every other blob is put again while the prune runs, in whatever order the two interleave.
      const again = blobs.filter((_, i) => i % 2 === 0);
      const [report] = await Promise.all([store.prune({ unusedForMs: 60_000 }), ...again.map((b) => store.put(b))]);
      for (const [i, d] of digests.entries()) expect(await store.has(d), `blob ${i}`).to.equal(i % 2 === 0);
      expect(report.removed).to.equal(100);
      expect((await readdir(where)).filter((n) => n.startsWith("."))).to.deep.equal([]); // nothing left aside

      // Used between the listing and its removal (here: inside keep, the last call before): left in place.
      const old = await store.put(utf8("used at the last moment"));
      await utimes(join(where, old.slice(2)), ago, ago);
      const touched = await store.prune({
        unusedForMs: 60_000,
        keep: (d) => {
          if (d === old) utimesSync(join(where, old.slice(2)), new Date(), new Date());
          return false;
        },
      });
      expect(touched).to.include({ removed: 0, failed: 0 });
      expect(await store.get(old)).to.deep.equal(utf8("used at the last moment"));
      // A file a prune set aside and could not put back or remove goes an hour later; a younger one stays.
      const stale = `.${old.slice(2)}.${Date.now() - 2 * 3_600_000}.0a1b.aside.tmp`;
      const young = `.${old.slice(2)}.${Date.now() - 60_000}.0a1c.aside.tmp`;
      for (const name of [stale, young]) await writeFile(join(where, name), "x");
      await store.prune({ unusedForMs: 60_000 });
      expect((await readdir(where)).filter((n) => n.startsWith("."))).to.deep.equal([young]);
      await rm(join(where, young));
      // stop() ends it between files.
      for (const d of [old, ...digests.filter((_, i) => i % 2 === 0)]) await utimes(join(where, d.slice(2)), ago, ago);
      let asked = 0;
      const stopped = await store.prune({ unusedForMs: 60_000, stop: () => ++asked > 10 });
      expect(stopped.removed + stopped.kept).to.equal(10);
      expect((await store.usage()).blobs).to.equal(101 - stopped.removed);
    });

    it("reports a blob it cannot read (a directory in its place) with the cause", async () => {
      const where = await mkdtemp(join(dir, "unreadable-"));
      await mkdir(join(where, ABC.slice(2)));
      const error = await rejection(new DirectoryBlobStore(where).get(ABC));
      expect(error).to.be.instanceOf(MeshworkBlobError);
      expect(error.shortMessage).to.equal("cannot read the blob file");
      expect((error.cause as NodeJS.ErrnoException).code).to.equal("EISDIR");
    });
  });

  describe("CachingBlobStore (a provider node's store)", () => {
    it("puts into the local store and every source, each told the digest; a source that fails is skipped", async () => {
      const seen: (string | undefined)[] = [];
      const local = new MemoryBlobStore();
      const source = new MemoryBlobStore();
      const recording: BlobStore = {
        put: async (bytes, digest) => (seen.push(digest), source.put(bytes, digest)),
        get: (d) => source.get(d),
        has: (d) => source.has(d),
      };
      const failing: BlobStore = {
        put: async () => Promise.reject(new MeshworkBlobError("down")),
        get: async () => Promise.reject(new MeshworkBlobError("down")),
        has: async () => Promise.reject(new MeshworkBlobError("down")),
      };
      const store = new CachingBlobStore(local, [failing, recording]);
      expect(await store.put(utf8("abc"))).to.equal(ABC);
      expect(seen).to.deep.equal([ABC]);
      expect(await local.has(ABC)).to.equal(true);
      expect(await source.has(ABC)).to.equal(true);
    });

    it("gets from a source what the local store lacks, verified, and keeps it", async () => {
      const local = new MemoryBlobStore();
      const source = new MemoryBlobStore();
      await source.put(utf8("abc"));
      const store = new CachingBlobStore(local, [source]);
      expect(await store.has(ABC)).to.equal(true);
      expect(await store.get(ABC)).to.deep.equal(utf8("abc"));
      expect(await local.get(ABC)).to.deep.equal(utf8("abc"));
      const missing = await rejection(store.get(EMPTY));
      expect(missing).to.be.instanceOf(MeshworkBlobError);
      expect(missing.details).to.deep.equal({ digest: EMPTY });
      // maxBytes reaches the source: a blob longer than asked for is neither returned nor kept.
      await source.put(utf8("abcd"));
      const long = digestOf(utf8("abcd"));
      const refused = await rejection(store.get(long, { maxBytes: 3 }));
      expect(refused.details).to.include({ digest: long });
      expect((refused.cause as MeshworkBlobError).details).to.include({ reason: "too-large", maxBytes: 3 });
      expect(await local.has(long)).to.equal(false);
    });

    it("checks a source's bytes itself before keeping them, whatever the source does and the caller asks", async () => {
      const local = new MemoryBlobStore();
      const lying: BlobStore = {
        put: async (bytes) => digestOf(bytes),
        get: async () => utf8("abd"), // another blob's bytes, unchecked (as a plain MemoryBlobStore returns them)
        has: async () => true,
      };
      const store = new CachingBlobStore(local, [lying]);
      for (const options of [{}, { verify: false }]) {
        const error = await rejection(store.get(ABC, options));
        expect(error.shortMessage).to.equal("blob not found in the local store or any source");
        expect((error.cause as MeshworkBlobError).details).to.include({ digest: ABC, actual: digestOf(utf8("abd")) });
      }
      expect(await local.has(ABC)).to.equal(false);
    });

    it("fetches again from a source a blob whose local file was changed on disk, and repairs the file", async () => {
      const where = await mkdtemp(join(tmpdir(), "meshwork-caching-"));
      try {
        const local = new DirectoryBlobStore(where);
        const source = new MemoryBlobStore();
        await source.put(utf8("abc"));
        await local.put(utf8("abc"));
        await writeFile(join(where, ABC.slice(2)), utf8("abd"));
        const store = new CachingBlobStore(local, [source]);
        expect(await store.get(ABC)).to.deep.equal(utf8("abc"));
        expect(await readFile(join(where, ABC.slice(2)))).to.deep.equal(Buffer.from("abc"));

        // With no source holding it, the local store's error is the cause.
        await writeFile(join(where, ABC.slice(2)), utf8("abd"));
        const error = await rejection(new CachingBlobStore(local, []).get(ABC));
        expect(error.shortMessage).to.equal("blob not found in the local store or any source");
        expect((error.cause as MeshworkBlobError).details).to.include({ digest: ABC, actual: digestOf(utf8("abd")) });
      } finally {
        await rm(where, { recursive: true, force: true });
      }
    });
  });

  describe("HttpBlobStore + startBlobServer (directory)", () => {
    let dir: string;
    before(async () => (dir = await mkdtemp(join(tmpdir(), "meshwork-blobs-"))));
    after(async () => rm(dir, { recursive: true, force: true }));

    behavesLikeABlobStore(async () => {
      const server = await startBlobServer({ dir: await mkdtemp(join(dir, "s-")) });
      return { store: new HttpBlobStore(server.url + "/", { timeoutMs: 5_000 }), done: server.close };
    });

    it("keeps blobs across restarts, one digest-named file each, and cleans up stale temporary files", async () => {
      const where = join(dir, "persist");
      let server = await startBlobServer({ dir: where });
      const bytes = new Uint8Array(randomBytes(100_000));
      const digest = await new HttpBlobStore(server.url).put(bytes);
      await server.close();

      await writeFile(join(where, `.${"00".repeat(32)}.1.abc.tmp`), "half a blob");
      server = await startBlobServer({ dir: where });
      try {
        const store = new HttpBlobStore(server.url);
        expect(await store.has(digest)).to.equal(true);
        expect(Buffer.from(await store.get(digest)).equals(bytes)).to.equal(true);
        expect(await readdir(where)).to.deep.equal([digest.slice(2)]);
        expect((await readFile(join(where, digest.slice(2)))).equals(bytes)).to.equal(true);
      } finally {
        await server.close();
      }
    });

    it("leaves nothing behind when an upload is rejected", async () => {
      const where = join(dir, "rejects");
      const server = await startBlobServer({ dir: where, maxBytes: 1000 });
      try {
        const mismatch = await fetch(`${server.url}/blobs/${ABC}`, { method: "PUT", body: utf8("abd") });
        expect(mismatch.status).to.equal(400);
        const oversize = await rejection(new HttpBlobStore(server.url).put(new Uint8Array(1001)));
        expect(oversize.details.status).to.equal(413);
        expect(await readdir(where)).to.deep.equal([]);
      } finally {
        await server.close();
      }
    });

    it("answers a failure of its own (its directory gone) with a 500 that names no file, and tells its owner what failed", async () => {
      const where = join(dir, "vanishing");
      const told: [unknown, string | undefined][] = [];
      const server = await startBlobServer({ dir: where, onError: (error, request) => told.push([error, request]) });
      try {
        await rm(where, { recursive: true });
        const res = await fetch(`${server.url}/blobs/${ABC}`, { method: "PUT", body: utf8("abc") });
        expect(res.status).to.equal(500);
        expect(await res.json()).to.deep.equal({ error: "internal error" });
        expect(told).to.have.length(1);
        expect(told[0][1]).to.equal(`PUT /blobs/${ABC}`);
        expect((told[0][0] as NodeJS.ErrnoException).code).to.equal("ENOENT");
        expect((told[0][0] as Error).message).to.include(where); // the owner's log may name the path
        const error = await rejection(new HttpBlobStore(server.url).put(utf8("abc")));
        expect([error.shortMessage, error.details.status]).to.deep.equal(["blob PUT failed with HTTP 500: internal error", 500]);
      } finally {
        await server.close();
      }
    });

    it("tells its owner nothing when a client goes away in the middle of a download", async () => {
      const where = join(dir, "abandoned");
      const told: unknown[] = [];
      const server = await startBlobServer({ dir: where, maxBytes: 64 << 20, onError: (error) => told.push(error) });
      try {
        const digest = await new DirectoryBlobStore(where).put(new Uint8Array(randomBytes(16 << 20)));
        await new Promise<void>((resolve, reject) => {
          const req = request(`${server.url}/blobs/${digest}`, (res) => {
            res.once("data", () => {
              req.destroy(); // gone after the first bytes
              setTimeout(resolve, 200);
            });
          });
          req.on("error", () => undefined);
          req.on("close", () => undefined);
          req.end();
          setTimeout(() => reject(new Error("no data")), 5_000);
        });
        expect(told).to.deep.equal([]);
      } finally {
        await server.close();
      }
    });

    it("tells its owner of a blob it cannot read once the download started: the client was not the one that went away", async function () {
      if (process.platform !== "linux") this.skip(); // a file that stats as a file and fails when read: /proc/self/mem
      const where = join(dir, "unreadable");
      const told: [unknown, string | undefined][] = [];
      const server = await startBlobServer({ dir: where, onError: (error, request) => told.push([error, request]) });
      try {
        await symlink("/proc/self/mem", join(where, ABC.slice(2)));
        const error = await rejection(new HttpBlobStore(server.url).get(ABC));
        expect(error).to.be.instanceOf(MeshworkBlobError);
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(told.map(([e, r]) => [(e as NodeJS.ErrnoException).code, r])).to.deep.equal([["EIO", `GET /blobs/${ABC}`]]);
      } finally {
        await server.close();
      }
    });

    it("serves concurrent uploads of the same blob", async () => {
      const server = await startBlobServer({ dir: join(dir, "concurrent") });
      try {
        const store = new HttpBlobStore(server.url);
        const bytes = new Uint8Array(randomBytes(200_000));
        const digests = await Promise.all(Array.from({ length: 8 }, () => store.put(bytes)));
        expect(new Set(digests).size).to.equal(1);
        expect(Buffer.from(await store.get(digests[0])).equals(bytes)).to.equal(true);
      } finally {
        await server.close();
      }
    });
  });

  describe("the embedded server's checks", () => {
    let server: BlobServer;
    let store: HttpBlobStore;
    beforeEach(async () => {
      server = await startBlobServer({ maxBytes: 1024 });
      store = new HttpBlobStore(server.url, { timeoutMs: 5_000 });
    });
    afterEach(async () => server.close());

    it("listens on 127.0.0.1 on a free port", () => {
      expect(server.url).to.equal(`http://127.0.0.1:${server.port}`);
      expect(server.port).to.be.greaterThan(0);
    });

    it("rejects an upload that does not hash to its digest (400) and stores nothing", async () => {
      const res = await fetch(`${server.url}/blobs/${ABC}`, { method: "PUT", body: utf8("abd") });
      expect(res.status).to.equal(400);
      expect((await res.json()).error).to.match(/digest mismatch/);
      expect(await store.has(ABC)).to.equal(false);
    });

    it("accepts an upload under the bare digest form (201, then 200 when already there)", async () => {
      const put = () => fetch(`${server.url}/blobs/${ABC.slice(2)}`, { method: "PUT", body: utf8("abc") });
      const first = await put();
      expect(first.status).to.equal(201);
      expect(await first.json()).to.deep.equal({ digest: ABC, size: 3 });
      expect((await put()).status).to.equal(200);
    });

    it("rejects malformed digests (400), unknown paths (404) and other methods (405)", async () => {
      expect((await fetch(`${server.url}/blobs/xyz`, { method: "PUT", body: utf8("abc") })).status).to.equal(400);
      expect((await fetch(`${server.url}/blobs/${ABC}00`)).status).to.equal(400);
      for (const bad of ["%zz", "%E0%A4%A", `${ABC.slice(0, -2)}%`]) {
        const res = await fetch(`${server.url}/blobs/${bad}`); // a bad % escape: the client's mistake, not the server's
        expect(res.status, bad).to.equal(400);
        expect(await res.json(), bad).to.deep.equal({ error: "malformed digest: expected 64 hex digits, optionally 0x-prefixed" });
        expect((await fetch(`${server.url}/blobs/${bad}`, { method: "PUT", body: utf8("abc") })).status, bad).to.equal(400);
      }
      expect((await fetch(`${server.url}/other/${ABC}`)).status).to.equal(404);
      expect((await fetch(`${server.url}/blobs/${ABC}/x`)).status).to.equal(404);
      const del = await fetch(`${server.url}/blobs/${ABC}`, { method: "DELETE" });
      expect(del.status).to.equal(405);
      expect(del.headers.get("allow")).to.equal("GET, HEAD, PUT");
    });

    it("serves only, when read-only: what its owner wrote is served, an upload gets 405 and stores nothing", async () => {
      const dir = await mkdtemp(join(tmpdir(), "meshwork-readonly-"));
      const own = new DirectoryBlobStore(dir);
      const ours = await own.put(utf8("abc"));
      const readOnly = await startBlobServer({ dir, readOnly: true });
      try {
        const client = new HttpBlobStore(readOnly.url, { timeoutMs: 5_000 });
        expect(new TextDecoder().decode(await client.get(ours))).to.equal("abc");
        const theirs = digestOf(utf8("theirs"));
        const put = await fetch(`${readOnly.url}/blobs/${theirs}`, { method: "PUT", body: utf8("theirs") });
        expect(put.status).to.equal(405);
        expect(put.headers.get("allow")).to.equal("GET, HEAD");
        expect(await put.json()).to.deep.equal({ error: "this server only serves its own blobs" });
        expect(await client.has(theirs)).to.equal(false);
        expect(await readdir(dir)).to.deep.equal([ours.slice(2)]);
        const error = await rejection(client.put(utf8("theirs")));
        expect(error).to.be.instanceOf(MeshworkBlobError);
      } finally {
        await readOnly.close();
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("answers 404 for a missing blob, and the client's error says which and where", async () => {
      expect((await fetch(`${server.url}/blobs/${ABC}`)).status).to.equal(404);
      expect((await fetch(`${server.url}/blobs/${ABC}`, { method: "HEAD" })).status).to.equal(404);
      const error = await rejection(store.get(ABC.slice(2)));
      expect(error).to.be.instanceOf(MeshworkBlobError);
      expect(error.details).to.deep.equal({ digest: ABC, status: 404, url: `${server.url}/blobs/${ABC}` });
    });

    it("serves a blob with its length, an ETag and immutable caching", async () => {
      await store.put(utf8("abc"));
      const res = await fetch(`${server.url}/blobs/${ABC}`, { method: "HEAD" });
      expect(res.status).to.equal(200);
      expect(res.headers.get("content-length")).to.equal("3");
      expect(res.headers.get("etag")).to.equal(`"${ABC.slice(2)}"`);
      expect(res.headers.get("cache-control")).to.match(/immutable/);
    });

    it("rejects an oversized upload (413), by its declared length or as it streams", async () => {
      expect(await store.put(new Uint8Array(1024))).to.equal(digestOf(new Uint8Array(1024)));
      for (const size of [1025, 1 << 20]) {
        const error = await rejection(store.put(new Uint8Array(size)));
        expect(error).to.be.instanceOf(MeshworkBlobError);
        expect(error.shortMessage).to.match(/too large/);
        expect(error.details.status).to.equal(413);
      }
      // No content-length: the server counts as the bytes arrive.
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 100; i++) controller.enqueue(new Uint8Array(100));
          controller.close();
        },
      });
      const res = await fetch(`${server.url}/blobs/${ABC}`, { method: "PUT", body, duplex: "half" } as RequestInit);
      expect(res.status).to.equal(413);
      // The server still works afterwards.
      expect(await store.put(utf8("abc"))).to.equal(ABC);
    });
  });

  describe("servers for this machine only (127.0.0.1): no web page of another site, no DNS rebinding", () => {
    it("the blob server answers 403 to a request naming another host, or from another site's page, and stores nothing", async () => {
      const server = await startBlobServer({ maxBytes: 1024 });
      try {
        const url = `${server.url}/blobs/${ABC}`;
        const local = { host: `127.0.0.1:${server.port}` };
        // A page on evil.example whose name now resolves to 127.0.0.1 sends its own name.
        for (const method of ["PUT", "GET", "HEAD"]) {
          const res = await rawRequest(url, method, { host: `evil.example:${server.port}` }, method === "PUT" ? utf8("abc") : undefined);
          expect(res.status, method).to.equal(403);
        }
        const rebound = await rawRequest(url, "PUT", { host: `evil.example:${server.port}` }, utf8("abc"));
        expect(JSON.parse(rebound.body).error).to.match(/host "evil\.example:\d+" not served/);
        for (const site of ["cross-site", "same-site"]) {
          expect((await rawRequest(url, "PUT", { ...local, "sec-fetch-site": site }, utf8("abc"))).status, site).to.equal(403);
          expect((await rawRequest(url, "GET", { ...local, "sec-fetch-site": site })).status, site).to.equal(403);
        }
        expect((await rawRequest(url, "GET", local)).status).to.equal(404); // nothing was stored
        // Programs, the address bar and the loopback names in every spelling are served.
        expect((await rawRequest(url, "PUT", local, utf8("abc"))).status).to.equal(201);
        for (const host of [`localhost:${server.port}`, `LOCALHOST`, `127.0.0.1`, `127.1.2.3:${server.port}`, `[::1]:${server.port}`]) {
          expect((await rawRequest(url, "GET", { host })).status, host).to.equal(200);
        }
        for (const site of ["none", "same-origin"]) expect((await rawRequest(url, "GET", { ...local, "sec-fetch-site": site })).status, site).to.equal(200);
        expect((await fetch(url)).status).to.equal(200);
      } finally {
        await server.close();
      }
    });

    it("the blob server answers the names it is told to (a reverse proxy keeping the Host header), and any on another interface", async () => {
      const proxied = await startBlobServer({ allowedHosts: ["Blobs.Example.org"] });
      const everywhere = await startBlobServer({ host: "0.0.0.0" });
      try {
        expect((await rawRequest(`${proxied.url}/blobs/${ABC}`, "GET", { host: "blobs.example.org" })).status).to.equal(404);
        expect((await rawRequest(`${proxied.url}/blobs/${ABC}`, "GET", { host: "evil.example" })).status).to.equal(403);
        expect((await rawRequest(`${everywhere.url}/blobs/${ABC}`, "GET", { host: "blobs.example.org" })).status).to.equal(404);
      } finally {
        await proxied.close();
        await everywhere.close();
      }
    });

    it("the worker's metrics answer 403 to a request naming another host, or from another site's page", async () => {
      const { url, server } = await new WorkerMetrics().serve(0);
      try {
        const port = new URL(url).port;
        expect((await rawRequest(url, "GET", { host: `evil.example:${port}` })).status).to.equal(403);
        expect((await rawRequest(url, "GET", { host: `127.0.0.1:${port}`, "sec-fetch-site": "cross-site" })).status).to.equal(403);
        const res = await rawRequest(url, "GET", { host: `localhost:${port}` });
        expect(res.status).to.equal(200);
        expect(res.body).to.include("meshwork_jobs_claimed_total");
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it("the worker's metrics answer 500 when a metric cannot be collected, tell their owner, and keep serving", async () => {
      const metrics = new WorkerMetrics();
      let broken = true;
      new Gauge({
        name: "meshwork_test_broken",
        help: "a gauge whose collection fails while broken",
        registers: [metrics.registry],
        collect() {
          if (broken) throw new Error("cannot read the GPU's temperature");
        },
      });
      const told: unknown[] = [];
      const { url, server } = await metrics.serve(0, "127.0.0.1", (error) => told.push(error));
      try {
        expect((await fetch(url)).status).to.equal(500);
        expect(told.map((e) => (e as Error).message)).to.deep.equal(["cannot read the GPU's temperature"]);
        broken = false;
        const res = await fetch(url);
        expect(res.status).to.equal(200);
        expect(await res.text()).to.include("meshwork_test_broken");
        // An error of the listening socket once it listens is told too, and does not end the process.
        server.emit("error", new Error("accept failed: EMFILE"));
        expect((told[1] as Error).message).to.equal("accept failed: EMFILE");
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });

  describe("a port in use", () => {
    it("the blob server and the worker's metrics reject with a typed error naming the address", async () => {
      const holder = await startBlobServer();
      try {
        for (const start of [() => startBlobServer({ port: holder.port }), () => new WorkerMetrics().serve(holder.port)]) {
          const error = await rejection(start());
          expect(error).to.be.instanceOf(MeshworkConfigError);
          expect(error.shortMessage).to.match(new RegExp(`^the (blob|metrics) server cannot listen on 127\\.0\\.0\\.1:${holder.port}: the port is in use`));
          expect(error.details).to.include({ host: "127.0.0.1", port: holder.port, code: "EADDRINUSE" });
        }
      } finally {
        await holder.close();
      }
    });
  });

  describe("HttpBlobStore against a misbehaving server", () => {
    const closers: (() => Promise<void>)[] = [];
    afterEach(async () => {
      while (closers.length) await closers.pop()!();
    });
    const evil = async (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      const s = await evilServer(handler);
      closers.push(s.close);
      return s;
    };

    it("detects tampered bytes on GET", async () => {
      const { url } = await evil((req, res) => res.end("abd"));
      const error = await rejection(new HttpBlobStore(url).get(ABC));
      expect(error).to.be.instanceOf(MeshworkBlobError);
      expect(error.shortMessage).to.match(/digest mismatch/);
      expect(error.details).to.include({ digest: ABC, actual: digestOf(utf8("abd")), status: 200, url: `${url}/blobs/${ABC}` });
    });

    it("returns the bytes unchecked to a caller that hashes them itself (verify: false): fetchResult, which hashes every chunk itself, still names a tampered one", async () => {
      const { url } = await evil((req, res) => res.end("abd"));
      expect(await new HttpBlobStore(url).get(ABC, { verify: false })).to.deep.equal(utf8("abd"));

      const published = new MemoryBlobStore();
      const jobId = "0x" + "11".repeat(32);
      const inputs = [utf8("in0"), utf8("in1")];
      const outputs = [utf8("out0"), utf8("out1")];
      const { root, outputURI } = await publishResult(published, jobId, inputs, outputs);
      const tampered = digestOf(outputs[1]).slice(2);
      const gateway = await evil(async (req, res) => {
        const digest = normalizeDigest(req.url!.split("/").pop()!);
        res.end(digest.slice(2) === tampered ? "out!" : await published.get(digest));
      });
      const error = await rejection(fetchResult(new HttpBlobStore(gateway.url), jobId, root, outputURI));
      expect(error).to.be.instanceOf(MeshworkVerificationError);
      expect(error.shortMessage).to.equal("output chunk 1 is missing or tampered with");
      expect((error.cause as MeshworkBlobError).details).to.include({ digest: digestOf(outputs[1]), actual: digestOf(utf8("out!")), chunk: 1 });
    });

    it("reports a connection dropped before the response, with its cause", async () => {
      const { url } = await evil((req) => req.socket.destroy());
      const error = await rejection(new HttpBlobStore(url).get(ABC));
      expect(error).to.be.instanceOf(MeshworkBlobError);
      expect(error.shortMessage).to.match(/^blob GET failed: /);
      expect(error.cause).to.be.instanceOf(Error);
      expect(error.details).to.deep.equal({ digest: ABC, url: `${url}/blobs/${ABC}` });
      const put = await rejection(new HttpBlobStore(url).put(utf8("abc")));
      expect(put).to.be.instanceOf(MeshworkBlobError);
      expect(put.shortMessage).to.match(/^blob PUT failed: /);
    });

    it("stops reading a body longer than maxBytes: by its declared length, or as it streams", async () => {
      let sent = 0;
      const { url } = await evil((req, res) => {
        if (req.url!.includes(ABC)) {
          res.writeHead(200, { "content-length": String(64 << 20) }); // claims 64 MiB
          res.write(Buffer.alloc(1024));
          return; // and never ends: the client must not wait for it
        }
        res.writeHead(200); // chunked, no length: 1 MiB pieces until the client hangs up
        const pump = () => {
          while (sent < 256 << 20 && res.write(Buffer.alloc(1 << 20))) sent += 1 << 20;
          if (sent < 256 << 20 && !res.destroyed) res.once("drain", pump);
        };
        res.on("close", () => (sent = Infinity));
        pump();
      });
      const store = new HttpBlobStore(url, { timeoutMs: 5_000 });
      const declared = await rejection(store.get(ABC, { maxBytes: 1000 }));
      expect(declared).to.be.instanceOf(MeshworkBlobError);
      expect(declared.details).to.include({ reason: "too-large", size: 64 << 20, maxBytes: 1000, status: 200 });
      const streamed = await rejection(store.get(EMPTY, { maxBytes: 3 << 20 }));
      expect(streamed.details).to.include({ reason: "too-large", maxBytes: 3 << 20 });
      expect(streamed.details.size).to.be.within((3 << 20) + 1, 8 << 20); // stopped soon after the limit
    });

    it("reports a body cut short", async () => {
      const { url } = await evil((req, res) => {
        res.writeHead(200, { "content-length": "1000" });
        res.write("abc");
        setTimeout(() => res.socket?.destroy(), 20);
      });
      const error = await rejection(new HttpBlobStore(url).get(ABC));
      expect(error).to.be.instanceOf(MeshworkBlobError);
      expect(error.shortMessage).to.match(/^blob GET failed: /);
      expect(error.details.status).to.equal(200);
      expect(error.cause).to.exist;
    });

    it("times out on a server that never answers, or stalls mid-body", async () => {
      const silent = await evil(() => {});
      const started = Date.now();
      const error = await rejection(new HttpBlobStore(silent.url, { timeoutMs: 150 }).has(ABC));
      expect(Date.now() - started).to.be.lessThan(3_000);
      expect(error).to.be.instanceOf(MeshworkBlobError);
      expect(error.shortMessage).to.equal("blob HEAD timed out after 150 ms");
      expect(error.cause).to.exist;

      const stalling = await evil((req, res) => {
        res.writeHead(200, { "content-length": "1000" });
        res.write("abc");
      });
      const stalled = await rejection(new HttpBlobStore(stalling.url, { timeoutMs: 150 }).get(ABC));
      expect(stalled.shortMessage).to.equal("blob GET timed out after 150 ms");
      expect(stalled.details.status).to.equal(200);
    });

    it("reports a refused connection", async () => {
      const server = await startBlobServer();
      await server.close();
      const error = await rejection(new HttpBlobStore(server.url, { timeoutMs: 2_000 }).get(ABC));
      expect(error).to.be.instanceOf(MeshworkBlobError);
      expect(error.message).to.match(/ECONNREFUSED/);
    });

    it("maps an unexpected status to an error carrying it", async () => {
      const { url } = await evil((req, res) => {
        res.writeHead(503, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "maintenance" }));
      });
      const store = new HttpBlobStore(url);
      for (const op of [() => store.get(ABC), () => store.has(ABC), () => store.put(utf8("abc"))]) {
        const error = await rejection(op());
        expect(error).to.be.instanceOf(MeshworkBlobError);
        expect(error.details.status).to.equal(503);
      }
      expect((await rejection(store.get(ABC))).shortMessage).to.equal("blob GET failed with HTTP 503: maintenance");
    });

    it("follows no redirect: a gateway cannot send the node's requests elsewhere (an internal address)", async () => {
      const asked: string[] = [];
      const inside = await evil((req, res) => {
        asked.push(`${req.method} ${req.url}`);
        res.end("abc");
      });
      const { url } = await evil((req, res) => {
        req.resume();
        res.writeHead(req.method === "PUT" ? 307 : 302, { location: `${inside.url}${req.url}` });
        res.end();
      });
      const store = new HttpBlobStore(url);
      for (const [method, op] of [["GET", () => store.get(ABC)], ["HEAD", () => store.has(ABC)], ["PUT", () => store.put(utf8("abc"))]] as const) {
        const error = await rejection(op());
        expect(error, method).to.be.instanceOf(MeshworkBlobError);
        expect(error.shortMessage).to.equal(`blob ${method} answered with a redirect (HTTP ${method === "PUT" ? 307 : 302}), which is not followed`);
        expect(error.details).to.include({ digest: ABC, reason: "redirect", location: `${inside.url}/blobs/${ABC}`, url: `${url}/blobs/${ABC}` });
      }
      expect(asked).to.deep.equal([]);
    });

    it("uses the fetch it is given", async () => {
      const seen: string[] = [];
      const fake: typeof fetch = async (input, init) => {
        seen.push(`${init?.method} ${input}`);
        return new Response(utf8("abc"), { status: 200 });
      };
      const store = new HttpBlobStore("https://blobs.example/base", { fetch: fake });
      expect(await store.get(ABC)).to.deep.equal(utf8("abc"));
      expect(seen).to.deep.equal([`GET https://blobs.example/base/blobs/${ABC}`]);
    });
  });
});
