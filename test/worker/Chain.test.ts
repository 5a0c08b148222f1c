/**
 * The worker and an unreliable chain: a transaction dropped from the mempool, an RPC that caps the
 * block range of log queries, a commit or a reveal undone by a reorg, stale reads from an RPC node behind the
 * chain, a job taken over by another provider, and open jobs nobody may claim any more.
 * None of them may hold up the other jobs, leave a job stuck, or cost an honest provider its
 * collateral.
 */
import { randomBytes } from "node:crypto";
import { expect } from "chai";
import { hexlify, makeError } from "ethers";
import { network } from "hardhat";
import pino from "pino";
import { Meshwork } from "../../sdk/src/client.js";
import { JOB_STATES, type JobHandle } from "../../sdk/src/jobs.js";
import { auditorCommitment } from "../../sdk/src/merkle.js";
import { collateralOf, unpackTerms } from "../../sdk/src/params.js";
import { WorkerState } from "../../sdk/src/worker/state.js";
import type { Worker } from "../../sdk/src/worker/worker.js";
import { timelockSigner } from "../helpers/dao.js";
import { USD, sdkWorld, type SdkWorld } from "../sdk/fixture.js";
import { JOB, counter, drive, intKernelSpec, makeWorker, settledOrFailed } from "./worker-fixture.js";

const connection = await network.create();
const { networkHelpers } = connection;
const ZERO = "0x0000000000000000000000000000000000000000";

async function world(): Promise<SdkWorld> {
  return sdkWorld(connection);
}

type Rpc = { request: (a: { method: string; params?: unknown[] }) => Promise<unknown> };
const rpc = connection.provider as unknown as Rpc;

/** Makes the RPC refuse `eth_getLogs` over more than `cap` blocks (as public endpoints do) while `body` runs. */
async function withLogRangeCap<T>(cap: number, body: () => Promise<T>): Promise<{ result: T; refused: number }> {
  const original = rpc.request.bind(rpc);
  let refused = 0;
  rpc.request = async (args) => {
    if (args.method === "eth_getLogs") {
      const filter = (args.params?.[0] ?? {}) as { fromBlock?: string; toBlock?: string };
      const latest = Number(await original({ method: "eth_blockNumber" }));
      const block = (b?: string) => (b === undefined || b === "latest" ? latest : Number(b));
      if (block(filter.toBlock) - block(filter.fromBlock) >= cap) {
        refused++;
        throw Object.assign(new Error(`query exceeds max block range ${cap}`), { code: -32600 });
      }
    }
    return original(args);
  };
  try {
    return { result: await body(), refused };
  } finally {
    rpc.request = original;
  }
}

/** Records the actions `mw` sends. */
function recordSends(mw: Meshwork): string[] {
  const sends: string[] = [];
  const send = mw.context.send.bind(mw.context);
  mw.context.send = async (action, fn) => {
    sends.push(action);
    return send(action, fn);
  };
  return sends;
}

/** The cheap provider's worker (its sends recorded, its state in memory) and a consumer's int-kernel job (spec `seed`). */
async function cheapWorkerAndJob(w: SdkWorld, seed: number, options: { computeWindow: bigint }) {
  const consumer = await w.sdk(w.consumer);
  const mw = await w.sdk(w.cheap);
  const sends = recordSends(mw);
  const state = new WorkerState(":memory:");
  const cheap = makeWorker(w, w.cheap, mw, { state });
  const job = await consumer.jobs.create(await intKernelSpec(w, seed), { ...JOB, ...options });
  return { mw, sends, state, cheap, job };
}

/** An auditor joins; `job` settles, with the one commit in the cheap provider's `sends`, and that provider never timed out nor slashed. */
async function settlesWithOneCommit(w: SdkWorld, cheap: Worker, job: JobHandle, sends: string[]) {
  const auditor = makeWorker(w, w.auditor, await w.sdk(w.auditor));
  await drive(w, [cheap, auditor], () => settledOrFailed(job), 60);
  expect(await job.state()).to.equal("Settled");
  expect(sends.filter((a) => a === "commit")).to.have.length(1);
  const counters = await w.registry.countersOf(w.cheap.address);
  expect([counters.timedOut, counters.slashes]).to.deep.equal([0n, 0n]);
}

/**
 * A provider fabricating its outputs (`cheap`), its job (spec `seed`, always audited: probation), and an
 * auditor whose audit claim was sent just as the chain stopped mining: given up on, unmined, its row
 * "auditing". Automine is left off.
 */
async function givenUpAudit(w: SdkWorld, seed: number) {
  const consumer = await w.sdk(w.consumer);
  const cheater = makeWorker(w, w.cheap, await w.sdk(w.cheap), { cheat: "fabricate" });
  const job = await consumer.jobs.create(await intKernelSpec(w, seed), { ...JOB, computeWindow: 600n });
  const auditorMw = await Meshwork.connect({ runner: w.auditor, addresses: w.book, blobStore: w.store, sending: { timeoutMs: 300, reprices: 0 } });
  const auditorState = new WorkerState(":memory:");
  const auditor = makeWorker(w, w.auditor, auditorMw, { state: auditorState });
  const send = auditorMw.context.send.bind(auditorMw.context);
  const audits: string[] = [];
  auditorMw.context.send = async (action, fn) => {
    if (action === "audit" && audits.push(action) === 1) await rpc.request({ method: "evm_setAutomine", params: [false] });
    return send(action, fn);
  };
  for (let round = 0; round < 40 && audits.length === 0; round++) {
    await cheater.tick();
    await cheater.idle();
    await auditor.tick();
    await auditor.idle();
    if (audits.length === 0) await networkHelpers.mine(1);
  }
  expect(audits).to.have.length(1);
  expect((await w.market.auditOf(job.job)).auditor).to.equal(ZERO);
  expect(auditorState.get(job.jobId)).to.include({ role: "auditor", phase: "auditing" });
  return { cheater, job, auditor, auditorState };
}

describe("worker on an unreliable chain", function () {
  it("sends a claim dropped from the mempool again: the tick ends and the job goes on to settle", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const resent: string[] = [];
    const mw = await Meshwork.connect({
      runner: w.cheap,
      addresses: w.book,
      blobStore: w.store,
      sending: { timeoutMs: 300, onReprice: (action) => resent.push(action) },
    });
    const state = new WorkerState(":memory:");
    const cheap = makeWorker(w, w.cheap, mw, { state });
    const job = await consumer.jobs.create(await intKernelSpec(w, 13), JOB);
    const pending = async () => ((await rpc.request({ method: "eth_getBlockByNumber", params: ["pending", false] })) as { transactions: string[] }).transactions;
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    try {
      let ended = false;
      const ticking = cheap.tick().then(() => (ended = true));
      let sent: string[] = [];
      for (let i = 0; i < 200 && sent.length === 0; i++) sent = await new Promise((r) => setTimeout(r, 20)).then(pending);
      expect(await rpc.request({ method: "hardhat_dropTransaction", params: [sent[0]] })).to.equal(true);
      for (let i = 0; i < 50 && !ended; i++) {
        await new Promise((r) => setTimeout(r, 100));
        await rpc.request({ method: "evm_mine", params: [] });
      }
      await ticking;
      expect(ended).to.equal(true);
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(resent).to.deep.equal(["claim"]);
    expect(state.get(job.jobId)?.phase).to.equal("claimed");
    expect(await job.state()).to.equal("Claimed");
    const auditor = makeWorker(w, w.auditor, await w.sdk(w.auditor));
    await drive(w, [cheap, auditor], () => settledOrFailed(job));
    expect((await job.wait({ timeoutMs: 10_000 })).provider).to.equal(w.cheap.address);
  });

  it("keeps an audit claim it gave up on: mined later, it still proves the provider's fraud and is paid (not slashed)", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { cheater, job, auditor, auditorState } = await givenUpAudit(w, 14);
    try {
      await auditor.tick(); // the claim is still to be had, its leaves kept: the claim given up on goes first, still unmined
      expect(auditorState.get(job.jobId)).to.include({ role: "auditor", phase: "auditing" });
      await rpc.request({ method: "evm_mine", params: [] }); // ... and is mined now
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect((await w.market.auditOf(job.job)).auditor).to.equal(w.auditor.address);
    const tieBreaker = makeWorker(w, w.dear, await w.sdk(w.dear));
    await drive(w, [cheater, auditor, tieBreaker], () => settledOrFailed(job), 60);
    expect(await job.state()).to.equal("Slashed");
    expect(await counter(auditor, "meshwork_audits_total", { role: "auditor", outcome: "fraud-caught" })).to.equal(1);
    expect(await w.market.queryFilter(w.market.filters.AuditorSlashed(job.jobId))).to.deep.equal([]);
    expect(auditorState.get(job.jobId)).to.include({ phase: "done", note: "Slashed: fraud-caught" });
  });

  it("keeps an audit claim it gave up on through an RPC failure: only the market's refusal lets it go", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { job, auditor, auditorState } = await givenUpAudit(w, 19);
    const auditSelector = w.market.interface.getFunction("audit")!.selector;
    const original = rpc.request.bind(rpc);
    let failed = 0;
    rpc.request = async (args) => {
      const call = (args.params?.[0] ?? {}) as { data?: string };
      if (args.method === "eth_call" && call.data?.startsWith(auditSelector)) {
        failed++;
        throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
      }
      return original(args);
    };
    try {
      await auditor.tick();
    } finally {
      rpc.request = original;
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(failed).to.equal(1);
    expect(auditorState.get(job.jobId)).to.include({ role: "auditor", phase: "auditing" }); // leaves kept
    expect(await counter(auditor, "meshwork_rpc_errors_total")).to.be.at.least(1);
  });

  it("lets an audit claim it gave up on go once the market would refuse it (its deadline passed): the job is considered afresh", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { job, auditor, auditorState } = await givenUpAudit(w, 18);
    try {
      for (const tx of ((await rpc.request({ method: "eth_getBlockByNumber", params: ["pending", false] })) as { transactions: string[] }).transactions) {
        await rpc.request({ method: "hardhat_dropTransaction", params: [tx] }); // lost: it will never be mined
      }
      await networkHelpers.time.increaseTo((await w.market.auditOf(job.job)).deadline + 1n);
      await auditor.tick();
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(auditorState.get(job.jobId)).to.include({ role: "none", phase: "seen" });
    expect((await w.market.auditOf(job.job)).auditor).to.equal(ZERO);
  });

  it("sends nothing more in a tick once a transaction was given up on: the other jobs wait for the next tick, not a timeout each", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const mw = await Meshwork.connect({ runner: w.cheap, addresses: w.book, blobStore: w.store, sending: { timeoutMs: 300, reprices: 0 } });
    const sends = recordSends(mw);
    const state = new WorkerState(":memory:");
    const cheap = makeWorker(w, w.cheap, mw, { state });
    const jobs = [await consumer.jobs.create(await intKernelSpec(w, 15), JOB), await consumer.jobs.create(await intKernelSpec(w, 16), JOB)];
    for (let i = 0; i < 2; i++) {
      await cheap.tick(); // claims both (concurrency 2), then computes them
      await cheap.idle();
    }
    expect(jobs.map((j) => state.get(j.jobId)?.phase)).to.deep.equal(["computed", "computed"]);
    sends.length = 0;
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    const pending = async () => ((await rpc.request({ method: "eth_getBlockByNumber", params: ["pending", false] })) as { transactions: string[] }).transactions;
    try {
      await cheap.tick(); // the first commit is not mined in time: given up on; the second job's is not sent
      expect(sends).to.deep.equal(["commit"]);
      expect(await pending()).to.have.length(1);
      await cheap.tick(); // still stuck: the commit given up on goes first and is still not mined; nothing else is sent
      expect(sends).to.deep.equal(["commit", "commit"]);
      expect(await pending()).to.have.length(1);
      await rpc.request({ method: "evm_mine", params: [] });
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    expect(await Promise.all(jobs.map((j) => j.state()))).to.have.members(["Committed", "Claimed"]);
    const auditor = makeWorker(w, w.auditor, await w.sdk(w.auditor));
    await drive(w, [cheap, auditor], async () => (await settledOrFailed(jobs[0])) && (await settledOrFailed(jobs[1])));
    expect(await Promise.all(jobs.map((j) => j.state()))).to.deep.equal(["Settled", "Settled"]);
    expect(sends.filter((a) => a === "commit")).to.have.length(3); // the first twice (given up on, then unstuck), the second once
  });

  it("leaves its scheduled withdrawal for the next tick when a transaction is stuck, rather than for a whole period", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const mw = await Meshwork.connect({ runner: w.cheap, addresses: w.book, blobStore: w.store, sending: { timeoutMs: 300, reprices: 0 } });
    const sends = recordSends(mw);
    const cheap = makeWorker(w, w.cheap, mw, { withdrawEverySec: 1 });
    const job = await consumer.jobs.create(await intKernelSpec(w, 22), JOB);
    for (let i = 0; i < 2; i++) {
      await cheap.tick(); // claims (its balance is all collateral: nothing to withdraw), then computes
      await cheap.idle();
    }
    expect(sends).to.deep.equal(["claim"]);
    await consumer.balances.deposit("tUSD", 5n * USD, w.cheap.address); // earnings to withdraw
    await new Promise((r) => setTimeout(r, 1_100)); // the next withdrawal is due
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    try {
      await cheap.tick(); // the commit is given up on: nothing more is sent, the withdrawal waits
      expect(sends).to.deep.equal(["claim", "commit"]);
      await rpc.request({ method: "evm_mine", params: [] });
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    await cheap.tick(); // the next tick, not the next period
    expect(sends.slice(2)).to.deep.equal(["withdraw"]);
    expect(await w.market.balanceOf(w.usd, w.cheap.address)).to.equal(0n);
    expect(await job.state()).to.equal("Committed");
  });

  it("tries its scheduled withdrawal again next tick when the withdrawal itself finds a transaction stuck", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const mw = await Meshwork.connect({ runner: w.cheap, addresses: w.book, blobStore: w.store, sending: { timeoutMs: 300, reprices: 0 } });
    const sends = recordSends(mw);
    const cheap = makeWorker(w, w.cheap, mw, { withdrawEverySec: 1 });
    await consumer.balances.deposit("tUSD", 5n * USD, w.cheap.address); // earnings
    await new Promise((r) => setTimeout(r, 1_100)); // a withdrawal is due (one period after the start)
    await cheap.tick(); // withdraws them
    expect(sends).to.deep.equal(["withdraw"]);
    await consumer.balances.deposit("tUSD", 5n * USD, w.cheap.address);
    await new Promise((r) => setTimeout(r, 1_100)); // the next withdrawal is due
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    try {
      expect(await mw.providers.postPrice("tUSD", 2n * USD).catch((e) => e.details.reason)).to.equal("given-up"); // sent by the operator, not mined
      await cheap.tick(); // the withdrawal, its first send, finds it still stuck
      expect(sends).to.deep.equal(["withdraw", "postPrice", "withdraw"]);
      await rpc.request({ method: "evm_mine", params: [] });
    } finally {
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    await cheap.tick(); // the next tick, not the next period
    expect(sends.slice(3)).to.deep.equal(["withdraw"]);
    expect(await w.market.balanceOf(w.usd, w.cheap.address)).to.equal(0n);
  });

  it("keeps stepping its jobs while reading new ones fails, and reads them over fewer blocks until the RPC answers", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const state = new WorkerState(":memory:");
    const cheap = makeWorker(w, w.cheap, await w.sdk(w.cheap), { state });
    const job = await consumer.jobs.create(await intKernelSpec(w, 14), { ...JOB, computeWindow: 3_600n });
    await drive(w, [cheap], async () => state.get(job.jobId)?.phase === "computed", 20, { finalTick: false });
    await networkHelpers.mine(1500);
    const later = await consumer.jobs.create(await intKernelSpec(w, 15), JOB);
    const { refused } = await withLogRangeCap(1_000, async () => {
      await cheap.tick(); // the scan fails (1,500 blocks at once); the commit goes out all the same
      await cheap.idle();
      expect(await job.state()).to.equal("Committed");
      for (let i = 0; i < 4 && !state.get(later.jobId); i++) {
        await networkHelpers.mine(1);
        await cheap.tick();
        await cheap.idle();
      }
    });
    expect(refused).to.be.greaterThan(0);
    expect(state.get(later.jobId), "a job created after the blocks the RPC refused to read at once").to.not.equal(undefined);
  });

  it("books a settled job and an audit's outcome when the RPC caps log queries at 5,000 blocks and the job began longer ago", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const providerState = new WorkerState(":memory:");
    const auditorState = new WorkerState(":memory:");
    const cheap = makeWorker(w, w.cheap, await w.sdk(w.cheap), { state: providerState });
    const auditor = makeWorker(w, w.auditor, await w.sdk(w.auditor), { state: auditorState });
    const job = await consumer.jobs.create(await intKernelSpec(w, 12), JOB); // a newcomer's job: audited
    await drive(w, [cheap, auditor], () => settledOrFailed(job), 60, { finalTick: false });
    expect(await job.state()).to.equal("Settled");
    await networkHelpers.mine(6_000); // a day on a 15 s chain, hours on an L2
    const { refused } = await withLogRangeCap(5_000, async () => {
      for (const worker of [cheap, auditor]) {
        await worker.tick();
        await worker.idle();
      }
    });
    expect(refused).to.equal(0);
    expect(providerState.get(job.jobId)).to.include({ phase: "done", note: "Settled" });
    expect(auditorState.get(job.jobId)?.phase).to.equal("done");
    expect(Number(await cheap.metrics.jobsCompleted.get().then((m) => m.values[0]?.value ?? 0))).to.equal(1);
  });

  it("finds a job a log query missed (answered by an RPC node behind the one that gave the block number): the last blocks read are read again", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const state = new WorkerState(":memory:");
    const cheap = makeWorker(w, w.cheap, await w.sdk(w.cheap), { state });
    await cheap.tick(); // read up to the head
    const job = await consumer.jobs.create(await intKernelSpec(w, 27), JOB);
    const original = rpc.request.bind(rpc);
    let hidden = 0;
    rpc.request = async (args) => (args.method === "eth_getLogs" ? (hidden++, []) : original(args));
    try {
      await cheap.tick();
      await cheap.idle();
    } finally {
      rpc.request = original;
    }
    expect(hidden).to.be.greaterThan(0);
    expect(state.get(job.jobId)).to.equal(undefined);
    await networkHelpers.mine(1);
    await drive(w, [cheap], async () => (await job.state()) !== "Open", 10, { finalTick: false });
    expect(await job.state()).to.equal("Claimed");
  });

  it("follows the chain through an RPC that caps log queries at 10 blocks: finds new jobs and books their settlement", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const providerState = new WorkerState(":memory:");
    const cheap = makeWorker(w, w.cheap, await w.sdk(w.cheap), { state: providerState });
    const auditor = makeWorker(w, w.auditor, await w.sdk(w.auditor));
    await networkHelpers.mine(300);
    const { refused } = await withLogRangeCap(10, async () => {
      const job = await consumer.jobs.create(await intKernelSpec(w, 26), JOB);
      await drive(w, [cheap, auditor], () => settledOrFailed(job), 60);
      expect(await job.state()).to.equal("Settled");
      expect(providerState.get(job.jobId)).to.include({ phase: "done", note: "Settled" });
    });
    expect(refused).to.be.greaterThan(0);
  });

  it("commits again when a reorg undoes its commit, instead of timing out its own job", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { sends, state, cheap, job } = await cheapWorkerAndJob(w, 16, { computeWindow: 600n });
    await drive(w, [cheap], async () => state.get(job.jobId)?.phase === "computed", 20, { finalTick: false });
    const beforeCommit = await rpc.request({ method: "evm_snapshot", params: [] });
    await cheap.tick();
    expect(state.get(job.jobId)?.phase).to.equal("committed");
    const salt = state.get(job.jobId)?.salt;
    await rpc.request({ method: "evm_revert", params: [beforeCommit] }); // the commit's block is gone
    expect(await job.state()).to.equal("Claimed");
    await cheap.tick();
    expect(await job.state()).to.equal("Committed");
    expect(state.get(job.jobId)).to.include({ phase: "committed", salt }); // the same commitment
    expect(sends.filter((a) => a === "commit")).to.have.length(2);
    const auditor = makeWorker(w, w.auditor, await w.sdk(w.auditor));
    await drive(w, [cheap, auditor], () => settledOrFailed(job), 60);
    expect(await job.state()).to.equal("Settled");
    expect((await w.registry.countersOf(w.cheap.address)).timedOut).to.equal(0n);
    expect(sends).to.not.include("enforceDeadline");
  });

  it("reveals again when a reorg undoes its reveal, instead of leaving the missed reveal to be slashed", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { sends, state, cheap, job } = await cheapWorkerAndJob(w, 19, { computeWindow: 600n }); // a newcomer's job: audited
    const auditor = makeWorker(w, w.auditor, await w.sdk(w.auditor));
    await drive(w, [cheap, auditor], async () => (await job.state()) === "Revealing", 40, { finalTick: false });
    expect(state.get(job.jobId)?.phase).to.equal("committed");
    const beforeReveal = await rpc.request({ method: "evm_snapshot", params: [] });
    await cheap.tick();
    expect(state.get(job.jobId)?.phase).to.equal("revealed");
    expect(await job.state()).to.equal("Settled"); // the auditor's leaves matched
    await rpc.request({ method: "evm_revert", params: [beforeReveal] }); // the reveal's block is gone
    expect(await job.state()).to.equal("Revealing");
    await cheap.tick();
    expect(sends.filter((a) => a === "revealResult")).to.have.length(2);
    expect(await job.state()).to.equal("Settled");
    await drive(w, [cheap, auditor], async () => state.get(job.jobId)?.phase === "done", 10);
    expect(state.get(job.jobId)).to.include({ phase: "done", note: "Settled" });
    expect(sends.filter((a) => a === "commit")).to.have.length(1);
    expect(sends).to.not.include("enforceDeadline");
    const counters = await w.registry.countersOf(w.cheap.address);
    expect([counters.timedOut, counters.slashes]).to.deep.equal([0n, 0n]);
  });

  it("does not let a committed job go on a stale state read (a lagging RPC node says Claimed): it settles", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { mw, sends, state, cheap, job } = await cheapWorkerAndJob(w, 18, { computeWindow: 600n });
    await drive(w, [cheap], async () => state.get(job.jobId)?.phase === "committed", 30, { finalTick: false });
    const market = mw.context.contracts.market as unknown as { jobState: (id: string) => Promise<bigint> };
    const real = market.jobState.bind(market);
    let stale = 1;
    market.jobState = Object.assign(async (id: string) => (id === job.jobId && stale-- > 0 ? BigInt(JOB_STATES.indexOf("Claimed")) : real(id)), {
      staticCall: real,
    });
    await cheap.tick();
    await cheap.idle();
    market.jobState = real;
    expect(state.get(job.jobId)?.phase).to.equal("committed");
    await settlesWithOneCommit(w, cheap, job, sends);
  });

  it("does not let a job it just claimed go on stale reads (a lagging RPC node says Open): computes it, it settles", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { mw, sends, state, cheap, job } = await cheapWorkerAndJob(w, 31, { computeWindow: 600n });
    await cheap.tick(); // claims
    expect(state.get(job.jobId)?.phase).to.equal("claimed");
    // The next reads come from a node a block behind: the job's state and its record both say Open.
    type Reads = { jobState: (id: string) => Promise<bigint>; jobRecord: (id: string) => Promise<unknown> };
    const market = mw.context.contracts.market as unknown as Reads;
    const real = { jobState: market.jobState.bind(market), jobRecord: market.jobRecord.bind(market) };
    const open = BigInt(JOB_STATES.indexOf("Open"));
    const stale = { state: 1, record: 1 };
    market.jobState = Object.assign(async (id: string) => (id === job.jobId && stale.state-- > 0 ? open : real.jobState(id)), { staticCall: real.jobState });
    market.jobRecord = Object.assign(async (id: string) => (id === job.jobId && stale.record-- > 0 ? { state: open, provider: ZERO } : real.jobRecord(id)), {
      staticCall: real.jobRecord,
    });
    await cheap.tick();
    await cheap.idle();
    Object.assign(market, real);
    expect(state.get(job.jobId)?.phase).to.equal("claimed"); // not let go
    expect(stale).to.deep.equal({ state: 0, record: 0 }); // both stale reads were made
    await settlesWithOneCommit(w, cheap, job, sends);
  });

  it("does not let a job go whose commit landed before a restart on a stale record read (a lagging node says Claimed): it settles", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { mw, sends, state, cheap, job } = await cheapWorkerAndJob(w, 34, { computeWindow: 600n });
    await drive(w, [cheap], async () => state.get(job.jobId)?.phase === "committed", 30, { finalTick: false });
    state.update(job.jobId, { phase: "committing" }); // killed after the commit landed, before it was booked
    type Reads = { jobRecord: (id: string) => Promise<unknown> };
    const market = mw.context.contracts.market as unknown as Reads;
    const real = market.jobRecord.bind(market);
    let stale = 1;
    const claimed = { state: BigInt(JOB_STATES.indexOf("Claimed")), provider: w.cheap.address, commitment: 0n };
    market.jobRecord = Object.assign(async (id: string) => (id === job.jobId && stale-- > 0 ? claimed : real(id)), { staticCall: real });
    await cheap.tick();
    await cheap.idle();
    market.jobRecord = real;
    expect(stale).to.equal(-1); // the stale read, then the second read that decides
    expect(state.get(job.jobId)?.phase).to.be.oneOf(["committing", "committed"]); // not let go
    await settlesWithOneCommit(w, cheap, job, sends);
  });

  it("lets a job go that another provider took over while it computed past the deadline: no commit sent, its place freed", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { sends, state, cheap, job } = await cheapWorkerAndJob(w, 32, { computeWindow: 600n });
    await drive(w, [cheap], async () => state.get(job.jobId)?.phase === "computed", 20, { finalTick: false });
    await networkHelpers.time.increase(700); // the computation ended past the commit deadline
    const auditor = makeWorker(w, w.auditor, await w.sdk(w.auditor));
    await auditor.tick(); // takes the job over: its claim times this node out
    await auditor.idle();
    expect((await w.market.jobRecord(job.jobId)).provider).to.equal(w.auditor.address);
    await cheap.tick();
    await cheap.idle();
    expect(state.get(job.jobId)).to.include({ phase: "done", note: "lost in Claimed" });
    expect(state.inPhase("claimed", "computed", "committing")).to.deep.equal([]); // free to claim another job
    expect(sends).to.deep.equal(["claim"]); // no commit that could only revert, tick after tick
  });

  it("looks up the provider's revealed leaves only when its audit needs them, not every tick while it waits", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const cheap = makeWorker(w, w.cheap, await w.sdk(w.cheap));
    const auditorState = new WorkerState(":memory:");
    const auditor = makeWorker(w, w.auditor, await w.sdk(w.auditor), { state: auditorState });
    const job = await consumer.jobs.create(await intKernelSpec(w, 33), JOB); // audited: probation
    await drive(w, [cheap, auditor], async () => auditorState.get(job.jobId)?.phase === "audit-committed", 30, { finalTick: false });
    expect(await job.state()).to.equal("Revealing"); // the auditor's blind claim landed; the provider has not revealed yet
    expect(await w.market.queryFilter(w.market.filters.ResultRevealed(job.jobId))).to.deep.equal([]);
    const revealed = w.market.interface.getEvent("ResultRevealed")!.topicHash;
    const original = rpc.request.bind(rpc);
    let lookups = 0;
    rpc.request = async (args) => {
      const filter = (args.params?.[0] ?? {}) as { topics?: unknown[] };
      if (args.method === "eth_getLogs" && filter.topics?.[0] === revealed) lookups++;
      return original(args);
    };
    try {
      for (let i = 0; i < 5; i++) {
        await auditor.tick();
        await auditor.idle();
        await networkHelpers.mine(1);
      }
    } finally {
      rpc.request = original;
    }
    expect(lookups).to.equal(0);
    expect(auditorState.get(job.jobId)?.phase).to.equal("audit-committed");
    await drive(w, [cheap, auditor], () => settledOrFailed(job), 60);
    expect(await job.state()).to.equal("Settled");
  });

  it("lets a claimed job go once its commit deadline has passed (a long downtime): times it out itself, computes nothing", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { sends, state, cheap, job } = await cheapWorkerAndJob(w, 17, { computeWindow: 600n });
    await cheap.tick(); // claims; the computation would start next tick
    expect(state.get(job.jobId)?.phase).to.equal("claimed");
    await networkHelpers.time.increase(700); // the node was down past the commit deadline
    await cheap.tick();
    await cheap.idle();
    expect(state.get(job.jobId)).to.include({ phase: "done", note: "lost in Claimed" });
    expect(await job.state()).to.equal("Open"); // reopened for another provider
    expect(sends).to.deep.equal(["claim", "enforceDeadline"]);
  });

  for (const how of ["still Pending", "replaced after the window"] as const) {
    it(`voids its committed job once the reveal window closes undrawn, the randomness source ${how}: collateral back, no slash`, async () => {
      const w = await networkHelpers.loadFixture(world);
      const governance = await timelockSigner(w);
      const randomness = await w.ethers.deployContract("MockRandomness");
      await randomness.set(0, w.ethers.ZeroHash); // Pending: a source that never answers
      await w.market.connect(governance).setRandomnessSource(await randomness.getAddress());
      const { sends, state, cheap, job } = await cheapWorkerAndJob(w, 23, { computeWindow: 600n });
      await drive(w, [cheap], async () => state.get(job.jobId)?.phase === "committed", 30, { finalTick: false });
      for (let i = 0; i < 3; i++) await cheap.tick(); // the draw is refused (RandomnessNotReady): it waits
      expect(await job.state()).to.equal("Committed");
      expect(sends.filter((a) => a === "draw" || a === "enforceDeadline")).to.deep.equal([]);

      const terms = unpackTerms(BigInt(job.job.terms));
      await networkHelpers.time.increase(terms.challengeWindow + terms.revealWindow + 1);
      if (how === "replaced after the window") {
        const working = await w.ethers.deployContract("MockRandomness"); // answers Ready
        await w.market.connect(governance).setRandomnessSource(await working.getAddress());
      }
      await drive(w, [cheap], async () => state.get(job.jobId)?.phase === "done", 5);
      expect(state.get(job.jobId)).to.include({ phase: "done", note: "voided" });
      expect(await job.state()).to.equal("Refunded");
      expect(sends.filter((a) => a === "draw")).to.deep.equal([]);
      expect(sends.filter((a) => a === "enforceDeadline")).to.have.length(1);
      const [voided] = await w.market.queryFilter(w.market.filters.JobVoided(job.jobId));
      expect(voided.args.provider).to.equal(w.cheap.address);
      expect(voided.args.collateral).to.equal(collateralOf(job.job));
      const counters = await w.registry.countersOf(w.cheap.address);
      expect([counters.timedOut, counters.slashes]).to.deep.equal([0n, 0n]);
      expect((await cheap.metrics.jobsFailed.get()).values.find((v) => v.labels.reason === "voided")?.value).to.equal(1);
    });
  }

  it("never enforces a missed reveal on itself: past the window of a job nobody drew, with the source unchanged and answering, it leaves the job to others", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { sends, state, cheap, job } = await cheapWorkerAndJob(w, 24, { computeWindow: 600n });
    await drive(w, [cheap], async () => state.get(job.jobId)?.phase === "committed", 30, { finalTick: false });
    const terms = unpackTerms(BigInt(job.job.terms));
    await networkHelpers.time.increase(terms.challengeWindow + terms.revealWindow + 1); // this node was down all along
    for (let i = 0; i < 3; i++) await cheap.tick(); // the draw is refused (DeadlinePassed)
    expect(await job.state()).to.equal("Committed");
    expect(sends.filter((a) => a === "draw" || a === "enforceDeadline")).to.deep.equal([]);
  });

  it("tells its operator once, in the log and a metric, when its job's dispute went to governance, and keeps following it", async () => {
    const w = await networkHelpers.loadFixture(world);
    const lines: { msg: string; jobId?: string; role?: string; decideBy?: string }[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const consumer = await w.sdk(w.consumer);
    const cheap = makeWorker(w, w.cheap, await w.sdk(w.cheap), { logger });
    const job = await consumer.jobs.create(await intKernelSpec(w, 41), JOB); // audited: probation
    await drive(w, [cheap], async () => (await job.state()) === "Audited", 30);
    // A lying auditor, then a tie-breaker answering a third way: the dispute escalates.
    const { market } = w;
    const sample = (await market.sampleOf(job.job)).map(Number);
    const lie = sample.map(() => hexlify(randomBytes(32)));
    await market.connect(w.auditor).audit(job.job, auditorCommitment(job.jobId, w.auditor.address, lie));
    await drive(w, [cheap], async () => (await job.state()) === "Disputed", 10); // the worker reveals to its auditor
    const [revealed] = await market.queryFilter(market.filters.ResultRevealed(job.jobId));
    const providerLeaves = [...revealed.args.leaves];
    await market.connect(w.auditor).revealAudit(job.job, lie, providerLeaves);
    await market.connect(w.mid).tieBreak(job.job);
    await market.connect(w.mid).revealTieBreak(job.job, sample.map(() => hexlify(randomBytes(32))), providerLeaves, lie);
    expect(await job.state()).to.equal("Escalated");
    for (let i = 0; i < 3; i++) {
      await cheap.tick();
      await cheap.idle();
    }
    const told = lines.filter((l) => l.msg.startsWith("the dispute went to governance"));
    expect(told).to.have.length(1);
    expect(told[0]).to.include({ jobId: job.jobId, role: "provider", decideBy: new Date(Number((await market.auditOf(job.job)).deadline) * 1000).toISOString() });
    expect(await counter(cheap, "meshwork_disputes_escalated_total", { role: "provider" })).to.equal(1);
    expect(await job.state()).to.equal("Escalated"); // only governance (or the deadline) ends it
  });

  it("tells an auditor's operator too when the dispute it audited goes to governance", async () => {
    const w = await networkHelpers.loadFixture(world);
    const lines: { msg: string; jobId?: string; role?: string }[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const consumer = await w.sdk(w.consumer);
    const cheater = makeWorker(w, w.cheap, await w.sdk(w.cheap), { cheat: "fabricate" });
    const auditor = makeWorker(w, w.auditor, await w.sdk(w.auditor), { logger });
    const job = await consumer.jobs.create(await intKernelSpec(w, 43), JOB); // audited: probation
    const { market } = w;
    const awaitingTieBreaker = async () => (await job.state()) === "Disputed" && Number((await market.auditOf(job.job)).phase) === 4;
    await drive(w, [cheater, auditor], awaitingTieBreaker, 40, { finalTick: false });
    // A tie-breaker answering a third way: escalated.
    const [revealed] = await market.queryFilter(market.filters.ResultRevealed(job.jobId));
    const [audited] = await market.queryFilter(market.filters.AuditRevealed(job.jobId));
    const disputed = (await market.auditOf(job.job)).disputed;
    const answer = [...revealed.args.leaves].filter((_, k) => (disputed >> BigInt(k)) & 1n).map(() => hexlify(randomBytes(32)));
    await market.connect(w.mid).tieBreak(job.job);
    await market.connect(w.mid).revealTieBreak(job.job, answer, [...revealed.args.leaves], [...audited.args.leaves]);
    expect(await job.state()).to.equal("Escalated");
    for (let i = 0; i < 3; i++) {
      await auditor.tick();
      await auditor.idle();
    }
    expect(lines.filter((l) => l.msg.startsWith("the dispute went to governance"))).to.have.length(1);
    expect(lines.find((l) => l.msg.startsWith("the dispute went to governance"))).to.include({ jobId: job.jobId, role: "auditor" });
    expect(await counter(auditor, "meshwork_disputes_escalated_total", { role: "auditor" })).to.equal(1);
  });

  it("keeps the RPC URL (an API key in its path) out of the log when the RPC answers with an HTTP error", async () => {
    const w = await networkHelpers.loadFixture(world);
    const lines: { msg: string; err?: string }[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const mw = await w.sdk(w.cheap);
    const cheap = makeWorker(w, w.cheap, mw, { logger });
    await cheap.tick();
    // What ethers' JsonRpcProvider throws for a 503: its message quotes info.requestUrl.
    const requestUrl = "https://rpc.example.org/v2/SECRET-API-KEY";
    const provider = mw.context.provider as { getBlockNumber: () => Promise<number> };
    const getBlockNumber = provider.getBlockNumber;
    provider.getBlockNumber = () =>
      Promise.reject(makeError("server response 503 Service Unavailable", "SERVER_ERROR", { info: { requestUrl, responseBody: "", responseStatus: "503 Service Unavailable" } }));
    try {
      await cheap.tick();
    } finally {
      provider.getBlockNumber = getBlockNumber;
    }
    const failed = lines.filter((l) => l.err !== undefined);
    expect(failed.map((l) => l.msg)).to.include("reading new jobs failed; retrying next tick");
    expect(failed.find((l) => l.msg.startsWith("reading new jobs failed"))?.err).to.equal("server response 503 Service Unavailable");
    expect(JSON.stringify(lines)).to.not.include("SECRET-API-KEY");
  });

  it("says why a node takes no jobs (here: not registered), once, and shows it in a metric", async () => {
    const w = await networkHelpers.loadFixture(world);
    const lines: { msg: string; why?: string }[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const mw = await w.sdk(w.outsider);
    const outsider = makeWorker(w, w.outsider, mw, { logger });
    await outsider.tick();
    await outsider.tick(); // said once, not every tick
    expect(lines.filter((l) => l.msg.startsWith("this node takes no jobs"))).to.deep.equal([
      lines.find((l) => l.why === "not registered (`register`)"),
    ]);
    expect((await outsider.metrics.active.get()).values[0].value).to.equal(0);
    const cheap = makeWorker(w, w.cheap, await w.sdk(w.cheap), { logger });
    await cheap.tick();
    expect((await cheap.metrics.active.get()).values[0].value).to.equal(1);
    expect(lines.filter((l) => l.msg.startsWith("this node takes no jobs"))).to.have.length(1); // nothing from an active node
  });

  it("leaves a draw to the job's provider: an auditor draws only when the provider has not for 16 blocks (plus its stagger) after the commit", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { sends, state, cheap, job } = await cheapWorkerAndJob(w, 19, { computeWindow: 600n });
    const auditorMw = await w.sdk(w.auditor);
    const auditorSends = recordSends(auditorMw);
    const auditor = makeWorker(w, w.auditor, auditorMw);
    await cheap.tick(); // claims (the auditor is a provider too)
    expect(state.get(job.jobId)?.phase).to.equal("claimed");
    // The auditor ticks first each round, so without its grace it would draw before the provider does.
    await drive(w, [auditor, cheap], () => settledOrFailed(job), 30);
    expect(state.get(job.jobId)).to.include({ phase: "done", note: "Settled" });
    expect(sends.filter((a) => a === "draw")).to.have.length(1);
    expect(auditorSends).to.not.include("draw");

    // The provider goes offline after its commit: the auditor draws once 16 blocks and its stagger (< 16) have passed.
    const { state: offlineState, cheap: offline, job: second } = await cheapWorkerAndJob(w, 20, { computeWindow: 600n });
    await drive(w, [offline], async () => offlineState.get(second.jobId)?.phase === "committed", 30, { finalTick: false });
    await networkHelpers.mine(10);
    await auditor.tick();
    expect(await second.state()).to.equal("Committed");
    await networkHelpers.time.increase(60); // time alone does not count: blocks do (the randomness lasts 256)
    await auditor.tick();
    expect(await second.state()).to.equal("Committed");
    await networkHelpers.mine(22);
    await auditor.tick();
    expect(await second.state()).to.equal("Audited"); // the provider's probation: always audited
    expect(auditorSends.filter((a) => a === "draw")).to.have.length(1);
  });

  it("takes over another provider's overdue claim with its own claim; a node that will not take the job times it out only after a grace", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { sends, state, cheap, job } = await cheapWorkerAndJob(w, 21, { computeWindow: 600n });
    await cheap.tick(); // claims, then goes offline
    expect(state.get(job.jobId)?.phase).to.equal("claimed");
    await networkHelpers.time.increase(700); // past the commit deadline
    const auditorMw = await w.sdk(w.auditor);
    const auditorSends = recordSends(auditorMw);
    const auditor = makeWorker(w, w.auditor, auditorMw);
    await auditor.tick();
    await auditor.idle();
    expect(auditorSends.filter((a) => !a.endsWith("approve"))).to.deep.equal(["claim"]); // the market timed the other out in it
    expect((await auditorMw.context.contracts.market.jobRecord(job.jobId)).provider).to.equal(w.auditor.address);
    expect((await w.registry.countersOf(w.cheap.address)).timedOut).to.equal(1n);
    expect(sends).to.deep.equal(["claim"]);
    await drive(w, [auditor], async () => (await job.state()) === "Committed", 20, { finalTick: false });

    // A node whose collateral limit keeps it from the job leaves the timeout to the consumer for 30 s (plus its stagger).
    const { cheap: again, state: againState, job: second } = await cheapWorkerAndJob(w, 27, { computeWindow: 600n });
    await again.tick();
    expect(againState.get(second.jobId)?.phase).to.equal("claimed");
    await networkHelpers.time.increase(610); // just past the commit deadline
    const limitedMw = await w.sdk(w.dear);
    const limitedSends = recordSends(limitedMw);
    const limited = makeWorker(w, w.dear, limitedMw, { maxCollateral: { tUSD: 1n } });
    await limited.tick();
    expect(await second.state()).to.equal("Claimed");
    expect(limitedSends).to.deep.equal([]);
    await networkHelpers.time.increase(60);
    await limited.tick();
    expect(limitedSends).to.deep.equal(["enforceDeadline"]);
    expect(await second.state()).to.equal("Open"); // reopened for whoever takes it
  });

  it("does not claim a job targeted at another provider (the market would refuse it): rejected once, nothing sent", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const mw = await w.sdk(w.cheap);
    const sends = recordSends(mw);
    const state = new WorkerState(":memory:");
    const cheap = makeWorker(w, w.cheap, mw, { state });
    const job = await consumer.jobs.create(await intKernelSpec(w, 28), { ...JOB, targetProvider: w.mid.address });
    for (let i = 0; i < 3; i++) {
      await cheap.tick();
      await cheap.idle();
      await networkHelpers.mine(1);
    }
    expect(state.get(job.jobId)).to.include({ phase: "rejected", note: "target" });
    expect(sends).to.deep.equal([]);
  });

  it("approves its collateral budget (maxCollateral) once, not the shortfall at every claim", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const mw = await w.sdk(w.cheap);
    const sends = recordSends(mw);
    const state = new WorkerState(":memory:");
    const cheap = makeWorker(w, w.cheap, mw, { state, maxCollateral: { tUSD: 300n * USD } });
    await mw.balances.withdraw("tUSD", await mw.balances.of("tUSD")); // every claim's collateral comes from the wallet
    const jobs = [await consumer.jobs.create(await intKernelSpec(w, 22), JOB), await consumer.jobs.create(await intKernelSpec(w, 23), JOB)];
    expect(await mw.balances.of("tUSD")).to.equal(0n);
    await drive(w, [cheap], async () => jobs.every((j) => state.get(j.jobId)?.phase === "committed"), 20, { finalTick: false });
    expect(sends.filter((a) => a === "claim")).to.have.length(2);
    expect(sends.filter((a) => a.endsWith("approve"))).to.deep.equal(["claim: approve"]);
    const market = await w.market.getAddress();
    const collateral = 2n * (await w.market.collateralOf(jobs[0].job));
    expect(await w.usd.allowance(w.cheap.address, market)).to.equal(300n * USD - collateral);
  });

  it("lets an open job go once its claim window has passed: no claim tried, nothing more read for it", async () => {
    const w = await networkHelpers.loadFixture(world);
    const consumer = await w.sdk(w.consumer);
    const now = BigInt((await connection.ethers.provider.getBlock("latest"))!.timestamp);
    const job = await consumer.jobs.create(await intKernelSpec(w, 11), { ...JOB, claimBy: now + 120n });
    await networkHelpers.time.increase(600); // nobody has refunded it yet
    const mw = await w.sdk(w.cheap);
    const sends = recordSends(mw);
    const state = new WorkerState(":memory:");
    const cheap = makeWorker(w, w.cheap, mw, { state });
    for (let i = 0; i < 3; i++) {
      await cheap.tick();
      await cheap.idle();
      await networkHelpers.mine(1);
    }
    expect(await job.state()).to.equal("Open");
    expect(state.get(job.jobId)).to.include({ phase: "done", note: "claim window passed" });
    expect(state.active().map((r) => r.jobId)).to.not.include(job.jobId);
    expect(sends).to.deep.equal([]);
  });

  it("replaces a commit an earlier run broadcast and left unmined (killed before it was mined): the restarted node commits in time and settles", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { mw, state, cheap, job } = await cheapWorkerAndJob(w, 24, { computeWindow: 600n });
    // The first run saves its salt, broadcasts its commit and is killed before the commit is mined.
    const send = mw.context.send.bind(mw.context);
    mw.context.send = async (action, fn) => {
      if (action === "commit") throw new Error("killed");
      return send(action, fn);
    };
    await drive(w, [cheap], async () => state.get(job.jobId)?.phase === "committing", 20, { finalTick: false });
    const row = state.get(job.jobId)!;
    await rpc.request({ method: "evm_setAutomine", params: [false] });
    let miner: ReturnType<typeof setInterval> | undefined;
    try {
      // What it broadcast: the commit, still in the mempool (nothing is mined until it is replaced, as
      // when it was priced under a fee spike: the chain would never mine it).
      const commitment = await w.market.commitmentHash(job.jobId, w.cheap.address, row.root!, row.salt!);
      const old = await w.market.connect(w.cheap).commit(job.jobId, commitment, { gasLimit: 300_000n });
      const nonces = async () => Promise.all(["latest", "pending"].map(async (tag) => Number(await rpc.request({ method: "eth_getTransactionCount", params: [w.cheap.address, tag] }))));
      const [latest, pending] = await nonces();
      expect(pending).to.equal(latest + 1);
      const waiting = async () => ((await rpc.request({ method: "eth_getBlockByNumber", params: ["pending", false] })) as { transactions: string[] }).transactions;
      const mineOnceReplaced = (async () => {
        let held = true;
        for (let i = 0; i < 300 && (held = (await waiting()).includes(old.hash)); i++) await new Promise((r) => setTimeout(r, 20));
        if (!held) miner = setInterval(() => void rpc.request({ method: "evm_mine", params: [] }).catch(() => undefined), 100);
      })();

      const restartedMw = await Meshwork.connect({ runner: w.cheap, addresses: w.book, blobStore: w.store, sending: { timeoutMs: 2_000, reprices: 1 } });
      const sends = recordSends(restartedMw);
      const lines: { msg: string; nonces?: number[] }[] = [];
      const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
      const restarted = makeWorker(w, w.cheap, restartedMw, { state, logger });
      for (let i = 0; i < 5 && (await job.state()) === "Claimed"; i++) {
        await restarted.tick();
        await restarted.idle();
      }
      expect(await job.state()).to.equal("Committed");
      expect(lines.find((l) => l.msg.startsWith("replaced transactions an earlier run left unmined"))?.nonces).to.deep.equal([latest]);
      expect(sends.filter((a) => a === "commit")).to.have.length(1);
      expect(state.get(job.jobId)).to.include({ phase: "committed", salt: row.salt }); // the same commitment
      expect(await nonces()).to.deep.equal([latest + 2, latest + 2]); // the replacement, then the commit
      await mineOnceReplaced;
      expect(await connection.ethers.provider.getTransactionReceipt(old.hash)).to.equal(null); // never mined
    } finally {
      clearInterval(miner);
      await rpc.request({ method: "evm_setAutomine", params: [true] });
    }
    const auditor = makeWorker(w, w.auditor, await w.sdk(w.auditor));
    await drive(w, [cheap, auditor], () => settledOrFailed(job), 60);
    expect(await job.state()).to.equal("Settled");
    const counters = await w.registry.countersOf(w.cheap.address);
    expect([counters.timedOut, counters.slashes]).to.deep.equal([0n, 0n]);
  });

  it("claims again a job whose claim a reorg dropped (its transaction in no block), instead of holding it as claimed while it reads Open", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { mw, sends, state, cheap, job } = await cheapWorkerAndJob(w, 25, { computeWindow: 600n });
    let beforeClaim: unknown;
    const send = mw.context.send.bind(mw.context);
    mw.context.send = async (action, fn) => {
      if (action === "claim" && beforeClaim === undefined) beforeClaim = await rpc.request({ method: "evm_snapshot", params: [] });
      return send(action, fn);
    };
    await drive(w, [cheap], async () => state.get(job.jobId)?.phase === "claimed", 20, { finalTick: false });
    const { claimTx, claimBlock } = state.get(job.jobId)!;
    expect(claimTx).to.match(/^0x[0-9a-f]{64}$/);
    await rpc.request({ method: "evm_revert", params: [beforeClaim] }); // the claim's block is gone
    expect(await job.state()).to.equal("Open");
    // Not before the RPC is past the claim's block: until then, the Open read may be a stale one.
    await cheap.tick();
    await cheap.idle();
    expect(state.get(job.jobId)?.phase).to.equal("claimed");
    await networkHelpers.mine(2);
    expect(await connection.ethers.provider.getBlockNumber()).to.be.greaterThan(claimBlock!);
    await drive(w, [cheap], async () => (await job.state()) !== "Open", 10, { finalTick: false });
    expect(await job.state()).to.equal("Claimed");
    expect(sends.filter((a) => a === "claim")).to.have.length(2);
    expect(state.get(job.jobId)?.claimTx).to.not.equal(claimTx);
    await settlesWithOneCommit(w, cheap, job, sends);
  });
});
