import { expect } from "chai";
import { network } from "hardhat";
import { packRequirements, packVerification, type Requirements } from "../../sdk/src/params.js";
import { computeStats, loadEvents, type MarketEvent } from "../../sdk/src/stats.js";
import { claimAudit, Result } from "../helpers/audits.js";
import {
  DEFAULT_REQUIREMENTS,
  HOUR,
  MIN_STAKE,
  USD,
  createJob,
  fund,
  makeReveal,
  marketWithProviders,
  onboardProvider,
  setDraw,
} from "../helpers/system.js";

const { ethers, networkHelpers } = await network.create();

/** A hand-built event list: one event per block, in the order they are added. */
class Chain {
  readonly events: MarketEvent[] = [];
  #block = 0;

  add(timestamp: number, event: DistributiveOmit<MarketEvent, "block" | "logIndex" | "timestamp">): this {
    this.events.push({ ...event, block: ++this.#block, logIndex: 0, timestamp } as MarketEvent);
    return this;
  }

  created(t: number, jobId: string, o: { token?: string; price?: bigint; workUnits?: bigint; req?: Partial<Requirements> } = {}) {
    return this.add(t, {
      kind: "created",
      jobId,
      consumer: "consumer",
      paymentToken: o.token ?? "USD",
      price: o.price ?? 100n,
      workUnits: o.workUnits ?? 10n,
      requirements: packRequirements({ ...DEFAULT_REQUIREMENTS, ...o.req }),
      targetProvider: ethers.ZeroAddress,
    });
  }

  claimed(t: number, jobId: string, provider: string) {
    return this.add(t, { kind: "claimed", jobId, provider });
  }

  /** claimed at `t`, committed at `t + compute`, settled at `t + compute + 1`. */
  delivered(t: number, jobId: string, provider: string, compute = 10) {
    return this.claimed(t, jobId, provider)
      .add(t + compute, { kind: "committed", jobId })
      .add(t + compute + 1, { kind: "settled", jobId, provider });
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

describe("SDK transparency statistics", () => {
  describe("computeStats", () => {
    it("gives nearest-rank queue-time percentiles, overall and by GPU class and region", () => {
      const c = new Chain();
      for (let i = 1; i <= 10; i++) c.created(0, `de${i}`, { req: { gpuClass: 7, region: "DE" } }).claimed(i * 10, `de${i}`, "alice");
      c.created(100, "any1").claimed(105, "any1", "bob");
      c.created(100, "any2").claimed(115, "any2", "bob");
      // Timed out and claimed again: only the first claim counts.
      c.add(200, { kind: "timedOut", jobId: "any2", provider: "bob", toConsumer: 4n, returnedToProvider: 16n });
      c.add(200, { kind: "reopened", jobId: "any2" }).claimed(900, "any2", "alice");
      c.created(300, "waiting1", { req: { gpuClass: 7 } });

      const { queueTime } = computeStats(c.events);
      // All twelve: 5, 10, 15, 20, 30, ..., 100 -> ranks 6, 11 and 12.
      expect(queueTime.all).to.deep.equal({ count: 12, p50: 40, p90: 90, p99: 100 });
      expect(queueTime.byGpuClass[7]).to.deep.equal({ count: 10, p50: 50, p90: 90, p99: 100 });
      expect(queueTime.byGpuClass[0]).to.deep.equal({ count: 2, p50: 5, p90: 15, p99: 15 });
      expect(queueTime.byRegion["DE"]).to.deep.equal(queueTime.byGpuClass[7]);
      expect(queueTime.byRegion[""]).to.deep.equal(queueTime.byGpuClass[0]);
      expect(Object.keys(queueTime.byGpuClass)).to.have.members(["0", "7"]);
      expect(queueTime.waiting).to.equal(1);
    });

    it("has null percentiles and zero everything for no events", () => {
      const stats = computeStats([]);
      expect(stats.queueTime.all).to.deep.equal({ count: 0, p50: null, p90: null, p99: null });
      expect(stats.jobs.total).to.equal(0);
      expect(stats.utilisation).to.deep.equal({ from: 0, to: 0, providers: 0, jobsInFlight: 0, busyProviders: 0, utilisation: 0 });
      expect(stats.priceBoard).to.deep.equal({});
      expect(stats.slashes).to.deep.equal([]);
    });

    it("builds the price board per token and a volume-weighted index over the window", () => {
      const c = new Chain()
        .created(0, "a", { price: 100n, workUnits: 10n }) // 10 per unit
        .created(1_000, "b", { price: 30n, workUnits: 2n }) // 15
        .created(2_000, "c", { price: 8n, workUnits: 1n }) // 8
        .created(2_000, "e", { token: "EUR", price: 7n, workUnits: 2n }); // 3 (rounded down)
      const stats = computeStats(c.events, { window: 1_500 });
      expect(stats.priceBoard["USD"]).to.deep.equal({ count: 3, latest: 8n, median: 10n, min: 8n, max: 15n });
      expect(stats.priceBoard["EUR"]).to.deep.equal({ count: 1, latest: 3n, median: 3n, min: 3n, max: 3n });
      expect(stats.window).to.deep.equal({ from: 500, to: 2_000 });
      // Window [500, 2000]: jobs b and c, (30 + 8) / (2 + 1) = 12.67 -> 12.
      expect(stats.priceIndex["USD"]).to.deep.equal({ pricePerUnit: 12n, volume: 38n, workUnits: 3n, jobs: 2 });
      expect(stats.priceIndex["EUR"]).to.deep.equal({ pricePerUnit: 3n, volume: 7n, workUnits: 2n, jobs: 1 });
      // With the default week-long window every job is in it.
      expect(computeStats(c.events).priceIndex["USD"].pricePerUnit).to.equal(138n / 13n);
    });

    it("rates each provider's reliability and lists slashes with their reasons", () => {
      const c = new Chain();
      for (const id of ["a1", "a2", "a3", "a4", "b1", "b2", "c1"]) c.created(0, id, { token: id === "c1" ? "EUR" : "USD" });
      c.delivered(10, "a1", "alice").delivered(20, "a2", "alice").delivered(30, "a3", "alice");
      c.claimed(40, "a4", "alice").add(50, { kind: "timedOut", jobId: "a4", provider: "alice", toConsumer: 40n, returnedToProvider: 160n });
      c.add(50, { kind: "refunded", jobId: "a4", consumer: "consumer", amount: 100n });
      c.delivered(60, "b1", "bob");
      c.claimed(70, "b2", "bob").add(80, { kind: "committed", jobId: "b2" });
      c.add(90, { kind: "revealMissed", jobId: "b2", provider: "bob", toConsumer: 160n, toTreasury: 40n, stakeSlashed: 100n });
      // carol is audited: dave (auditor) and erin (tie-breaker) disagree, the majority proves fraud; then
      // an auditor loses another dispute and one stalls.
      c.claimed(100, "c1", "carol").add(110, { kind: "committed", jobId: "c1" });
      c.add(111, { kind: "auditDrawn", jobId: "c1", audited: true, probabilityBps: 5_000, failSafe: false });
      c.add(112, { kind: "auditClaimed", jobId: "c1", auditor: "dave" });
      c.add(120, { kind: "fraudProven", jobId: "c1", provider: "carol", toConsumerSide: 60n, toAuditors: 100n, toTreasury: 40n, stakeSlashed: 7n });
      c.add(130, { kind: "auditorSlashed", jobId: "a1", auditor: "dave", collateral: 100n, stakeSlashed: 5n });
      c.add(140, { kind: "auditorStalled", jobId: "a2", auditor: "erin", collateral: 100n });

      const stats = computeStats(c.events);
      const { alice, bob, carol, dave, erin } = stats.providers;
      expect(alice).to.include({ claimed: 4, settled: 3, timedOut: 1, slashed: 0, reliability: 0.75 });
      expect(bob).to.include({ claimed: 2, settled: 1, timedOut: 0, slashed: 1, reliability: 0.5 });
      expect(carol).to.include({ claimed: 1, settled: 0, slashed: 1, reliability: 0, audited: 1, auditsPassed: 0 });
      expect(dave).to.include({ claimed: 0, reliability: null, auditsDone: 1, auditorSlashed: 1 });
      expect(erin).to.include({ auditorStalled: 1 });
      expect(stats.slashes.map(({ provider, jobId, reason, amount, stakeSlashed, token }) => ({ provider, jobId, reason, amount, stakeSlashed, token }))).to.deep.equal([
        { provider: "alice", jobId: "a4", reason: "timeout", amount: 40n, stakeSlashed: 0n, token: "USD" },
        { provider: "bob", jobId: "b2", reason: "revealMissed", amount: 200n, stakeSlashed: 100n, token: "USD" },
        { provider: "carol", jobId: "c1", reason: "fraud", amount: 200n, stakeSlashed: 7n, token: "EUR" },
        { provider: "dave", jobId: "a1", reason: "auditorMinority", amount: 100n, stakeSlashed: 5n, token: "USD" },
        { provider: "erin", jobId: "a2", reason: "auditorStalled", amount: 100n, stakeSlashed: 0n, token: "USD" },
      ]);
      expect(stats.audits).to.include({ drawn: 1, audited: 1, claimed: 1, fraud: 1, auditorSlashed: 1, auditorStalled: 1, passed: 0 });
      expect(stats.jobs.byState).to.include({ settled: 4, refunded: 1, slashed: 2 });
    });

    it("counts jobs by their state after the last event", () => {
      const c = new Chain();
      for (const id of ["open", "reopened", "claimed", "committed", "audit", "settled", "cancelled"]) c.created(0, id);
      c.claimed(1, "reopened", "p").add(2, { kind: "timedOut", jobId: "reopened", provider: "p", toConsumer: 1n, returnedToProvider: 1n });
      c.add(2, { kind: "reopened", jobId: "reopened" });
      c.claimed(3, "claimed", "p");
      c.claimed(3, "committed", "q").add(4, { kind: "committed", jobId: "committed" });
      c.add(5, { kind: "auditDrawn", jobId: "committed", audited: false, probabilityBps: 5_000, failSafe: false });
      c.claimed(3, "audit", "q").add(4, { kind: "committed", jobId: "audit" });
      c.add(5, { kind: "challenged", jobId: "audit", challenger: "x", bond: 10n });
      c.delivered(6, "settled", "q");
      c.add(7, { kind: "cancelled", jobId: "cancelled", consumer: "consumer", refund: 100n });
      const { jobs, queueTime } = computeStats(c.events);
      expect(jobs.total).to.equal(7);
      expect(jobs.byState).to.deep.equal({ open: 2, claimed: 1, committed: 1, inAudit: 1, settled: 1, slashed: 0, refunded: 0, cancelled: 1 });
      expect(queueTime.waiting).to.equal(1); // "reopened" was claimed before
    });

    it("measures utilisation as busy provider-time over available provider-time in the window", () => {
      const c = new Chain()
        .add(0, { kind: "providerRegistered", provider: "alice", id: 1, gpuClass: 3, region: "DE" })
        .add(0, { kind: "providerRegistered", provider: "bob", id: 2, gpuClass: 7, region: "BR" })
        .created(0, "j1")
        .created(0, "j2")
        .created(0, "j3");
      // alice computes j1 over [20, 60] and j2 over [40, 70] (overlapping: busy 50 s, 70 job-seconds).
      c.claimed(20, "j1", "alice").claimed(40, "j2", "alice").add(60, { kind: "committed", jobId: "j1" }).add(70, { kind: "committed", jobId: "j2" });
      c.created(100, "j4");
      const stats = computeStats(c.events);
      expect(stats.utilisation).to.deep.equal({ from: 0, to: 100, providers: 2, jobsInFlight: 0.7, busyProviders: 0.5, utilisation: 0.25 });

      // A job still being computed counts until `now`; a window clips the intervals.
      const later = new Chain();
      later.events.push(...c.events);
      later.claimed(100, "j3", "bob");
      const s2 = computeStats(later.events, { now: 150, window: 100 });
      // Window [50, 150]: alice busy [50, 70] = 20 s, bob [100, 150] = 50 s, of 200 provider-seconds.
      expect(s2.utilisation).to.include({ from: 50, to: 150, providers: 2, busyProviders: 0.7, utilisation: 0.35 });
      expect(Math.abs(s2.utilisation.jobsInFlight - 0.8)).to.be.lessThan(1e-12); // 10 + 20 + 50 job-seconds
    });

    it("sorts records that come out of chain order", () => {
      const c = new Chain().created(0, "j").claimed(30, "j", "p");
      const reversed = [...c.events].reverse();
      expect(computeStats(reversed)).to.deep.equal(computeStats(c.events));
    });
  });

  describe("loadEvents", () => {
    /**
     * Five jobs on the in-process chain: settled, timed out and reopened, cancelled, audited and settled,
     * and one whose provider never reveals (slashed).
     */
    async function market() {
      const sys = await marketWithProviders(ethers);
      const [p1, p2, p3] = sys.providers;
      const auditor = sys.others[0];
      await onboardProvider(sys, auditor);
      await fund(sys, auditor, 1_000n * USD);

      const settled = await createJob(sys, sys.consumer, { req: { gpuClass: 3, region: "DE" } });
      await networkHelpers.time.increase(60);
      await sys.market.connect(p1).claim(settled.job);
      const r = makeReveal(ethers, settled.jobId, p1.address);
      await sys.market.connect(p1).commit(settled.jobId, r.commitment);
      await setDraw(sys, settled.jobId, false);
      await networkHelpers.time.increase(HOUR);
      await sys.market.settle(settled.job, p1.address, r.resultRoot, r.salt, r.outputURI);

      const timedOut = await createJob(sys, sys.consumer, { price: 200n * USD });
      await sys.market.connect(p2).claim(timedOut.job);
      await networkHelpers.time.increase(HOUR + 1n);
      await sys.market.enforceDeadline(timedOut.job);

      const cancelled = await createJob(sys, sys.consumer);
      await sys.market.connect(sys.consumer).cancel(cancelled.job);

      // Audited: the audit module's events are emitted at the market's address.
      const audited = await createJob(sys, sys.consumer, { verification: packVerification({ chunks: 16, auditChunks: 4, auditBps: 0 }) });
      await sys.market.connect(p3).claim(audited.job);
      const result = Result.of(audited.jobId, p3.address, 16);
      await sys.market.connect(p3).commit(audited.jobId, result.commitment);
      await setDraw(sys, audited.jobId, true);
      const { sample } = await claimAudit(sys, audited.job, auditor);
      await sys.market
        .connect(p3)
        .revealResult(audited.job, p3.address, result.tree.root, result.salt, "", result.leavesAt(sample), result.proofsAt(sample));

      const missed = await createJob(sys, sys.consumer);
      await sys.market.connect(p1).claim(missed.job);
      const m = makeReveal(ethers, missed.jobId, p1.address);
      await sys.market.connect(p1).commit(missed.jobId, m.commitment);
      await setDraw(sys, missed.jobId, false);
      await networkHelpers.time.increase(2n * HOUR + 1n);
      await sys.market.enforceDeadline(missed.job);

      return { sys, auditor, ids: { settled, timedOut, cancelled, audited, missed } };
    }

    it("reads the market's and the registry's events in pages, in chain order, with block timestamps", async () => {
      const { sys, auditor, ids } = await networkHelpers.loadFixture(market);
      const [p1, p2, p3] = sys.providers;
      const latest = await ethers.provider.getBlockNumber();
      const events = await loadEvents({ market: sys.market, registry: sys.registry }, { fromBlock: 0, provider: ethers.provider, blockRange: 7 });
      expect(await loadEvents({ market: sys.market, registry: sys.registry }, { fromBlock: 0, toBlock: latest })).to.deep.equal(events);

      for (let i = 1; i < events.length; i++) {
        const [a, b] = [events[i - 1], events[i]];
        expect(a.block < b.block || (a.block === b.block && a.logIndex < b.logIndex)).to.equal(true);
      }
      const count = (kind: string) => events.filter((e) => e.kind === kind).length;
      expect(count("created")).to.equal(5);
      expect(count("claimed")).to.equal(4);
      expect(count("providerRegistered")).to.equal(4);
      expect(count("pricePosted")).to.equal(4);
      expect(count("timedOut")).to.equal(1);
      expect(count("reopened")).to.equal(1);
      expect(count("auditClaimed")).to.equal(1); // emitted by the audit module, at the market's address
      expect(count("auditPassed")).to.equal(1);
      expect(count("stakeSlashed")).to.equal(1);
      expect(count("jailed")).to.equal(1);

      const created = events.find((e) => e.kind === "created" && e.jobId === ids.settled.jobId)!;
      const claimed = events.find((e) => e.kind === "claimed" && e.jobId === ids.settled.jobId)!;
      expect(created.timestamp).to.equal((await ethers.provider.getBlock(created.block))!.timestamp);
      expect(created).to.include({ consumer: sys.consumer.address, paymentToken: await sys.usd.getAddress(), price: 100n * USD, workUnits: 10n });
      expect(claimed).to.include({ provider: p1.address });
      const registered = events.find((e) => e.kind === "providerRegistered" && e.provider === p2.address);
      expect(registered).to.include({ id: 2, gpuClass: 7, region: "BR" });

      const stats = computeStats(events);
      expect(stats.jobs.total).to.equal(5);
      expect(stats.jobs.byState).to.deep.equal({ open: 1, claimed: 0, committed: 0, inAudit: 0, settled: 2, slashed: 1, refunded: 0, cancelled: 1 });
      expect(stats.queueTime.all.count).to.equal(4);
      expect(stats.queueTime.byGpuClass[3]).to.deep.equal({ count: 1, p50: claimed.timestamp - created.timestamp, p90: claimed.timestamp - created.timestamp, p99: claimed.timestamp - created.timestamp });
      expect(claimed.timestamp - created.timestamp).to.be.greaterThanOrEqual(60);
      expect(stats.queueTime.byRegion["DE"].count).to.equal(1);
      expect(stats.queueTime.byRegion[""].count).to.equal(3);
      expect(stats.queueTime.waiting).to.equal(0);

      const usd = await sys.usd.getAddress();
      expect(stats.priceBoard[usd]).to.deep.equal({ count: 5, latest: 10n * USD, median: 10n * USD, min: 10n * USD, max: 20n * USD });
      expect(stats.priceIndex[usd]).to.deep.equal({ pricePerUnit: 12n * USD, volume: 600n * USD, workUnits: 50n, jobs: 5 });

      expect(stats.providers[p1.address]).to.include({ claimed: 2, settled: 1, slashed: 1, timedOut: 0, reliability: 0.5 });
      expect(stats.providers[p2.address]).to.include({ claimed: 1, timedOut: 1, reliability: 0 });
      expect(stats.providers[p3.address]).to.include({ claimed: 1, settled: 1, audited: 1, auditsPassed: 1, reliability: 1 });
      expect(stats.providers[auditor.address]).to.include({ auditsDone: 1, reliability: null });
      expect(stats.audits).to.include({ audited: 1, claimed: 1, passed: 1 });

      const collateral = 400n * USD; // 200 tUSD job, collateralBps 20000
      expect(stats.slashes.map(({ provider, jobId, reason, amount, stakeSlashed, token }) => ({ provider, jobId, reason, amount, stakeSlashed, token }))).to.deep.equal([
        { provider: p2.address, jobId: ids.timedOut.jobId, reason: "timeout", amount: collateral / 5n, stakeSlashed: 0n, token: usd },
        { provider: p1.address, jobId: ids.missed.jobId, reason: "revealMissed", amount: 200n * USD, stakeSlashed: MIN_STAKE / 10n, token: usd },
      ]);
      expect(stats.utilisation.providers).to.equal(4);
      expect(stats.utilisation.utilisation).to.be.greaterThan(0).and.lessThan(1);
    });

    it("reads only the blocks asked for, fetching each block's header once", async () => {
      const { sys, ids } = await networkHelpers.loadFixture(market);
      const headers: number[] = [];
      const counting = new Proxy(ethers.provider, {
        get(target, prop) {
          if (prop === "getBlock") return (n: number) => (headers.push(n), target.getBlock(n));
          const value = Reflect.get(target, prop, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const all = await loadEvents({ market: sys.market, registry: sys.registry }, { fromBlock: 0, provider: counting, blockRange: 1_000 });
      expect(headers).to.have.members([...new Set(all.map((e) => e.block))]);

      const cancelledAt = all.find((e) => e.kind === "cancelled")!.block;
      const tail = await loadEvents({ market: sys.market, registry: sys.registry }, { fromBlock: cancelledAt, blockRange: 3 });
      expect(tail).to.deep.equal(all.filter((e) => e.block >= cancelledAt));
      expect(tail[0]).to.include({ kind: "cancelled", jobId: ids.cancelled.jobId });
      const head = await loadEvents({ market: sys.market, registry: sys.registry }, { fromBlock: 0, toBlock: cancelledAt - 1 });
      expect([...head, ...tail]).to.deep.equal(all);
    });

    it("reads a void (the draw's randomness never came) as a refund that is nobody's fault", async () => {
      const sys = await marketWithProviders(ethers);
      const p1 = sys.providers[0];
      const { jobId, job } = await createJob(sys, sys.consumer);
      await sys.market.connect(p1).claim(job);
      await sys.market.connect(p1).commit(jobId, makeReveal(ethers, jobId, p1.address).commitment);
      await sys.randomness.set(0, ethers.ZeroHash); // Pending
      await networkHelpers.time.increase(2n * HOUR + 1n);
      await sys.market.enforceDeadline(job);
      const events = await loadEvents({ market: sys.market, registry: sys.registry }, { fromBlock: 0 });
      expect(events.find((e) => e.kind === "voided")).to.include({ jobId, provider: p1.address, collateral: 200n * USD });
      expect(events.find((e) => e.kind === "refunded")).to.include({ jobId, consumer: sys.consumer.address, amount: 100n * USD });
      const stats = computeStats(events);
      expect(stats.jobs.byState.refunded).to.equal(1);
      expect(stats.providers[p1.address]).to.include({ claimed: 1, settled: 0, slashed: 0, timedOut: 0, reliability: null });
      expect(stats.slashes).to.deep.equal([]);
    });
  });
});
