import { expect } from "chai";
import { mkdtempSync, readdirSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirectoryBlobStore, digestOf } from "../../sdk/src/blob.js";
import type { BlobRef } from "../../sdk/src/spec.js";
import { BlobBudget } from "../../sdk/src/worker/blobBudget.js";

describe("blob directory budget", () => {
  const MIN = 60_000;
  /** A directory of `count` blobs of 100 bytes, blob i last used i minutes ago. */
  async function directory(count: number) {
    const store = new DirectoryBlobStore(mkdtempSync(join(tmpdir(), "meshwork-budget-")));
    const digests: string[] = [];
    for (let i = 0; i < count; i++) {
      const digest = await store.put(new Uint8Array(100).fill(i));
      const at = new Date(Date.now() - i * MIN);
      utimesSync(join(store.dir, digest.slice(2)), at, at);
      digests.push(digest);
    }
    const left = () =>
      readdirSync(store.dir)
        .map((n) => digests.indexOf("0x" + n))
        .sort((a, b) => a - b);
    return { store, digests, left };
  }
  /** References to new blobs of `size` bytes (not in any directory). */
  const fresh = (...sizes: number[]): BlobRef[] => sizes.map((size, i) => ({ digest: digestOf(new Uint8Array(size).fill(200 + i)), size }));
  const none = async () => new Set<string>();

  it("reserves room for the blobs the directory does not hold, each counted once, and counts them until it measures again", async () => {
    const { store, digests, left } = await directory(3);
    const budget = new BlobBudget({ store, maxBytes: 1_000, pinned: none });
    // Held already, or the same blob twice: only the new one counts.
    const [a] = fresh(400);
    expect(await budget.reserve([{ digest: digests[0], size: 100 }, a, a])).to.include({ ok: true, bytes: 400, removed: undefined });
    expect(await budget.reserve([{ digest: digests[1], size: 100 }])).to.include({ ok: true, bytes: 0 });
    // 300 held + 400 reserved + 300 = 1,000: fits, nothing removed.
    expect(await budget.reserve(fresh(300))).to.include({ ok: true, bytes: 300 });
    expect(left()).to.deep.equal([0, 1, 2]);
  });

  it("makes room by removing the least recently used blobs that are neither pinned nor the asking job's", async () => {
    const { store, digests, left } = await directory(8);
    const pinned = new Set([digests[7]]); // the oldest, but a followed job's
    const budget = new BlobBudget({ store, maxBytes: 1_000, pinned: async () => pinned });
    // 800 held + 450 > 1,000: the least recently used go until 550 are left, blob 7 (pinned) and blob 6 (kept) aside.
    const reservation = await budget.reserve(fresh(450), [digests[6]]);
    expect(reservation).to.deep.include({ ok: true, bytes: 450 });
    expect(reservation.removed).to.deep.equal({ removed: 3, removedBytes: 300, kept: 5, keptBytes: 500, failed: 0 });
    expect(left()).to.deep.equal([0, 1, 2, 6, 7]);
    // Its blob lands (written long ago, as a file could be), not yet released: a reserve that needs room leaves it there.
    const [landed] = fresh(450);
    const digest = await store.put(new Uint8Array(450).fill(200));
    expect(digest).to.equal(landed.digest);
    utimesSync(join(store.dir, digest.slice(2)), new Date(0), new Date(0));
    const next = await budget.reserve(fresh(0, 200).slice(1));
    expect(next).to.include({ ok: true, bytes: 200 });
    expect(await store.has(landed.digest)).to.equal(true);
    expect(left()).to.deep.equal([-1, 0, 1, 7]); // -1: the landed blob; 6 (kept by the first asker only) and 2 went
    expect(next.removed).to.include({ removed: 2, keptBytes: 750 });
  });

  it("says no when even that leaves no room, removing nothing then, and does not look again until retried or measured", async () => {
    const { store, digests, left } = await directory(4);
    const pinned = new Set(digests.slice(0, 3));
    let asked = 0;
    const budget = new BlobBudget({
      store,
      maxBytes: 600,
      fullRetryMs: 60_000,
      pinned: async () => {
        asked++;
        return pinned;
      },
    });
    const before = Date.now();
    const refused = await budget.reserve(fresh(350));
    expect(refused).to.deep.include({ ok: false, needed: 350, used: 400, maxBytes: 600 });
    // 300 pinned + 350 cannot fit in 600: blob 3, which nothing needs, stays (removing it would not have made room).
    expect(refused.removed).to.include({ removed: 0, kept: 4, keptBytes: 400 });
    expect(left()).to.deep.equal([0, 1, 2, 3]);
    expect(refused.ok || refused.retryAt).to.be.within(before + 60_000, Date.now() + 60_000);
    // Within the retry delay: no look at all (no pins asked for, nothing removed).
    const again = await budget.reserve(fresh(350));
    expect(again).to.deep.include({ ok: false, needed: 350 });
    expect(again.removed).to.equal(undefined);
    expect(asked).to.equal(1);
    // Smaller blobs that fit without removing anything are not refused meanwhile.
    const fits = await budget.reserve(fresh(150));
    expect(fits).to.include({ ok: true, bytes: 150 });
    if (fits.ok) fits.release(); // its fetch failed: nothing landed
    // The hourly prune's pass (fit) ends the delay: a job finished, its blobs unpinned, room made.
    pinned.clear();
    const smaller = await budget.reserve(fresh(0)); // nothing new: nothing reserved
    expect(smaller).to.include({ ok: true, bytes: 0 });
    expect(await budget.fit()).to.include({ removed: 0, keptBytes: 400 });
    const after = await budget.reserve(fresh(350));
    expect(after).to.include({ ok: true, bytes: 350 });
    expect(after.removed).to.include({ removed: 2 }); // 3 and 2, the least recently used
    expect(left()).to.deep.equal([0, 1]);
    expect(asked).to.equal(3); // the fit's look and this reserve's
  });

  it("counts a blob that landed unreserved (a spec) and, when that takes the directory over, makes room at once", async () => {
    const { store, digests, left } = await directory(5);
    const budget = new BlobBudget({ store, maxBytes: 600, pinned: async () => new Set([digests[4]]) });
    // The first call measures the directory (the blob that landed is in it): 500 fit.
    expect(await budget.landed(100)).to.equal(undefined);
    expect(left()).to.deep.equal([0, 1, 2, 3, 4]);
    // The spec lands (written now), 300 more: 800 > 600, so 3 and 2 go, the least recently used (4 is pinned, the spec kept).
    const spec = await store.put(new Uint8Array(300).fill(99));
    const removed = await budget.landed(300, [spec]);
    expect(removed).to.include({ removed: 2, keptBytes: 600 });
    expect(left()).to.deep.equal([-1, 0, 1, 4]);
    expect(await store.has(spec)).to.equal(true);
  });

  it("fits the directory within the budget on its own (the hourly prune), keeping what is pinned or being fetched, and looks again after a refusal", async () => {
    const { store, digests, left } = await directory(6);
    const pinned = new Set([digests[5]]);
    const budget = new BlobBudget({ store, maxBytes: 400, pinned: async () => pinned });
    // Refused (100 pinned + 350 cannot fit in 400, so nothing removed), and no more looks for a minute.
    expect(await budget.reserve(fresh(350))).to.deep.include({ ok: false, used: 600 });
    expect(left()).to.deep.equal([0, 1, 2, 3, 4, 5]);
    // The hourly prune's pass: the least recently used go until the directory is within the budget.
    expect(await budget.fit()).to.include({ removed: 2, keptBytes: 400 });
    expect(left()).to.deep.equal([0, 1, 2, 5]);
    // The refusal is over: a blob that fits once blob 2 goes is looked at, and fits; it lands.
    const [landing] = fresh(100);
    expect(await budget.reserve([landing])).to.include({ ok: true, bytes: 100 });
    expect(await store.put(new Uint8Array(100).fill(200))).to.equal(landing.digest);
    expect(left()).to.deep.equal([-1, 0, 1, 5]);
    // A newer blob written by others takes the directory over: fit removes 1 and 0, not the blob being fetched.
    const other = await store.put(new Uint8Array(150).fill(9));
    expect(await budget.fit()).to.include({ removed: 2, keptBytes: 350 });
    expect(await store.has(landing.digest)).to.equal(true);
    expect(await store.has(other)).to.equal(true);
    expect(left()).to.deep.equal([-1, -1, 5]);
  });

  it("removes nothing when the pins cannot all be listed (the worker is stopping)", async () => {
    const { store, left } = await directory(5);
    const budget = new BlobBudget({ store, maxBytes: 500, pinned: async () => undefined });
    expect(await budget.reserve(fresh(100))).to.deep.include({ ok: false, needed: 100, used: 500 });
    expect(left()).to.deep.equal([0, 1, 2, 3, 4]);
  });

  it("runs reserves one at a time: two checks never both take the last room", async () => {
    const { store, digests } = await directory(5);
    const pinned = new Set(digests);
    const budget = new BlobBudget({ store, maxBytes: 800, pinned: async () => pinned });
    const outcomes = await Promise.all([budget.reserve(fresh(250)), budget.reserve(fresh(260))]);
    expect(outcomes.map((o) => o.ok)).to.deep.equal([true, false]);
  });

  it("measures the directory again once its measure is older than freshMs, counting what others wrote", async () => {
    const { store } = await directory(2);
    const budget = new BlobBudget({ store, maxBytes: 1_000, freshMs: 0, pinned: none });
    const first = await budget.reserve(fresh(500));
    expect(first).to.include({ ok: true });
    if (first.ok) first.release();
    // The 500 reserved were never fetched: once released, the next measure finds 200, so 800 more fit.
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await budget.reserve(fresh(800))).to.include({ ok: true, bytes: 800 });
    // A budget must be positive.
    expect(() => new BlobBudget({ store, maxBytes: 0, pinned: none })).to.throw(RangeError, "maxBytes must be positive");
  });
});
