/**
 * The blob directory's budget (`maxBlobDirBytes`). Anyone may post jobs, and cancel them losing
 * nothing, whose program or model and inputs every eligible node downloads to check them before a
 * claim. The budget bounds what such checks bring in: before a check fetches blobs the directory does
 * not hold, {@link BlobBudget.reserve} makes sure they fit, removing the least recently used blobs that
 * no job this node took or is checking needs when they do not, and says no, removing nothing, when even
 * that would leave no room. A job's spec, whose size is known only once it is here (up to 8 MiB), is
 * counted when it lands ({@link BlobBudget.landed}), and room made then; the hourly prune brings the
 * directory within the budget ({@link BlobBudget.fit}).
 *
 * What a job this node took brings in (its outputs, an audit's fetches) is never refused, as its
 * deadlines run: the directory may go over the budget by that much, and the next reserve counts it.
 */
import type { BlobRef } from "../spec.js";
import { normalizeDigest, type DirectoryBlobStore, type PruneReport } from "../blob.js";

export interface BlobBudgetOptions {
  store: DirectoryBlobStore;
  /** The most bytes the directory's blobs may take once a reserve made room (> 0). */
  maxBytes: number;
  /**
   * The digests no reserve may remove: the blobs of the jobs the worker took and has not finished, and
   * of those whose checks are running or passed (not of a job it only saw or turned down). Undefined when
   * they cannot all be listed now (the worker is stopping): the reserve then removes nothing.
   */
  pinned: () => Promise<ReadonlySet<string> | undefined>;
  /**
   * How long a measure of the directory is trusted, ms (default 60,000). Writes that no reserve saw
   * (a job's outputs, an audit's fetches) count from the next measure on, and a reservation whose
   * fetch failed stops counting then.
   */
  freshMs?: number;
  /** After a reserve found no room even once it removed what it could, how long the next ones say no without looking (ms, default 60,000). */
  fullRetryMs?: number;
}

/** What {@link BlobBudget.reserve} decided. */
export type Reservation =
  | {
      ok: true;
      bytes: number;
      removed?: PruneReport;
      /** To call once the blobs are fetched, or their fetch failed: from then on a measure counts them. */
      release: () => void;
    }
  | { ok: false; needed: number; used: number; maxBytes: number; retryAt: number; removed?: PruneReport };

export class BlobBudget {
  readonly #o: BlobBudgetOptions;
  /** The directory's bytes as last measured, plus the reservations released since (fetched, most of them). */
  #measured?: { bytes: number; at: number };
  /**
   * The blobs of reservations not yet released (being fetched), by digest: counted, and never removed
   * to make room. `counted`: it was in the directory at the last measure, so in its bytes already.
   */
  readonly #pending = new Map<string, { size: number; counted: boolean }>();
  #fullUntil = 0;
  /** Reserves run one at a time: two checks never both take the last room. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: BlobBudgetOptions) {
    if (!(options.maxBytes > 0)) throw new RangeError("maxBytes must be positive");
    this.#o = options;
  }

  get maxBytes(): number {
    return this.#o.maxBytes;
  }

  /**
   * Room for the blobs of `refs` the directory does not hold yet (each counted once, at its declared
   * size). When the directory would go over the budget, removes the least recently used blobs that are
   * neither pinned, nor in `keep` (the other blobs of the job asking), nor being fetched, until they
   * fit, or nothing when even removing all of those would not make room. Resolves to whether they fit;
   * after a reserve that says no, the next ones that do not fit say no without looking for
   * `fullRetryMs`, or until {@link fit}.
   */
  reserve(refs: readonly BlobRef[], keep: Iterable<string> = []): Promise<Reservation> {
    const next = this.#queue.then(() => this.#reserve(refs, new Set([...keep].map(normalizeDigest))));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Counts a blob that landed without a reservation, its size unknown before (a job's spec, up to 8
   * MiB), and when that takes the directory over the budget, removes the least recently used blobs
   * that are neither pinned, nor in `keep`, nor being fetched, until it is within it again (or
   * nothing more can go). Resolves to what it removed, if it looked.
   */
  landed(bytes: number, keep: Iterable<string> = []): Promise<PruneReport | undefined> {
    const next = this.#queue.then(async () => {
      if (this.#measured) this.#measured.bytes += bytes;
      else await this.#measure(async () => (await this.#o.store.usage()).bytes);
      if (this.#used() <= this.#o.maxBytes || Date.now() < this.#fullUntil) return undefined;
      return this.#makeRoom(0, new Set([...keep].map(normalizeDigest)));
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Brings the directory within the budget now (the hourly prune), in turn with the reserves: removes
   * the least recently used blobs that are neither pinned nor being fetched until the directory, with
   * the blobs being fetched, is within it (or nothing more can go), and measures it. The next reserve
   * looks again, even after one that said no. Resolves to what it removed and kept, or undefined when
   * the pins cannot be listed now (the worker is stopping).
   */
  fit(): Promise<PruneReport | undefined> {
    const next = this.#queue.then(async () => {
      const report = await this.#makeRoom(0, new Set());
      if (report) this.#fullUntil = 0;
      return report;
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Removes what it may until `needed` more fit (see {@link reserve}); undefined when the pins cannot be
   * listed now. `allOrNothing`: removes nothing when even removing all it may would leave no room (a
   * reserve that will say no), so that nothing is lost for nothing.
   */
  async #makeRoom(needed: number, keep: Set<string>, allOrNothing = false): Promise<PruneReport | undefined> {
    const pinned = await this.#o.pinned();
    if (!pinned) return undefined;
    let removed: PruneReport | undefined;
    await this.#measure(async () => {
      const options = {
        unusedForMs: Number.MAX_SAFE_INTEGER, // by use only: least recently used first
        maxBytes: Math.max(0, this.#o.maxBytes - needed - this.#uncounted()),
        keep: (digest: string) => pinned.has(digest) || keep.has(digest) || this.#pending.has(digest),
      };
      if (allOrNothing) {
        const planned = await this.#o.store.prune({ ...options, dryRun: true });
        if (planned.keptBytes > options.maxBytes) {
          removed = { removed: 0, removedBytes: 0, kept: planned.kept + planned.removed, keptBytes: planned.keptBytes + planned.removedBytes, failed: 0 };
          return removed.keptBytes;
        }
      }
      removed = await this.#o.store.prune(options);
      return removed.keptBytes;
    });
    return removed;
  }

  async #reserve(refs: readonly BlobRef[], keep: Set<string>): Promise<Reservation> {
    const store = this.#o.store;
    const sizes = new Map<string, number>();
    for (const ref of refs) {
      const digest = normalizeDigest(ref.digest);
      if (!sizes.has(digest) && !this.#pending.has(digest) && !(await store.has(digest))) sizes.set(digest, ref.size);
    }
    const needed = [...sizes.values()].reduce((a, b) => a + b, 0);
    if (needed === 0) return { ok: true, bytes: 0, release: () => undefined };
    const maxBytes = this.#o.maxBytes;
    if (!this.#measured || Date.now() - this.#measured.at > (this.#o.freshMs ?? 60_000)) await this.#measure(async () => (await store.usage()).bytes);
    let removed: PruneReport | undefined;
    const refuse = (): Reservation => ({ ok: false, needed, used: this.#used(), maxBytes, retryAt: this.#fullUntil, removed });
    if (this.#used() + needed > maxBytes) {
      if (Date.now() < this.#fullUntil) return refuse();
      for (const digest of sizes.keys()) keep.add(digest);
      removed = await this.#makeRoom(needed, keep, true);
      if (!removed) return refuse();
      if (this.#used() + needed > maxBytes) {
        this.#fullUntil = Date.now() + (this.#o.fullRetryMs ?? 60_000);
        return refuse();
      }
    }
    for (const [digest, size] of sizes) this.#pending.set(digest, { size, counted: false });
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      let uncounted = 0;
      for (const digest of sizes.keys()) {
        const pending = this.#pending.get(digest);
        this.#pending.delete(digest);
        if (pending && !pending.counted) uncounted += pending.size;
      }
      // In the directory now (most likely), and not in the last measure: counted from here on.
      if (this.#measured) this.#measured.bytes += uncounted;
    };
    return { ok: true, bytes: needed, removed, release };
  }

  /** Counts the directory with `count`, noting first which blobs being fetched are there already (so in the count). */
  async #measure(count: () => Promise<number>): Promise<void> {
    for (const [digest, pending] of this.#pending) pending.counted = await this.#o.store.has(digest);
    this.#measured = { bytes: await count(), at: Date.now() };
  }

  /** The bytes of the blobs being fetched that the last measure did not count. */
  #uncounted(): number {
    let bytes = 0;
    for (const pending of this.#pending.values()) if (!pending.counted) bytes += pending.size;
    return bytes;
  }

  #used(): number {
    return (this.#measured?.bytes ?? 0) + this.#uncounted();
  }
}
