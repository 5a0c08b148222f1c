/**
 * Transparency statistics (PROTOCOL.md §10), computed from on-chain events only: queue times by GPU
 * class and region, the price board and a price index, utilisation, per-provider reliability, audits,
 * slashes with their reasons, and jobs by state.
 *
 * Two steps: {@link loadEvents} reads the market's and the registry's logs into plain
 * {@link MarketEvent} records (paged, so it works against public RPCs), and {@link computeStats} turns
 * such a list into {@link MarketStats} without any RPC. Records are plain data, so a dashboard or an
 * indexer can cache them, append new blocks and recompute.
 *
 * Conventions: times are unix seconds (block timestamps); token amounts are bigint base units;
 * addresses are as ethers returns them (checksummed).
 *
 * @example
 * ```ts
 * const events = await loadEvents({ market, registry }, { fromBlock: deployBlock, provider });
 * const stats = computeStats(events);
 * console.log(stats.queueTime.all.p50, stats.priceIndex[usdAddress]?.pricePerUnit);
 * ```
 */
import type { BaseContract, Interface, Log, Provider } from "ethers";
import { MeshworkError } from "./errors.js";
import { regionName, unpackRequirements } from "./params.js";

/* ------------------------------------------------------------------------------------------------ */
/* Event records                                                                                     */
/* ------------------------------------------------------------------------------------------------ */

/** Where and when an event happened. Records are ordered by (`block`, `logIndex`). */
export interface EventPosition {
  block: number;
  logIndex: number;
  /** The block's timestamp, unix seconds. */
  timestamp: number;
  txHash?: string;
}

/** Governance's verdict on an escalated dispute (IJobMarketTypes.Verdict). */
export type Verdict = "ProviderFraud" | "AuditorFraud" | "NoFault";
/** The verdicts in the contract's enum order. */
export const VERDICTS: readonly Verdict[] = ["ProviderFraud", "AuditorFraud", "NoFault"];

/**
 * One market or registry event, as plain data. `kind` names it; the other fields are the event's
 * arguments that statistics use (see contracts/interfaces/IJobMarketTypes.sol and IProviderRegistry.sol).
 * Market events whose payload is only useful to the parties (leaves, balances, governance settings) are
 * not loaded.
 *
 * @example
 * ```ts
 * const claim: MarketEvent = { kind: "claimed", jobId, provider, block: 120, logIndex: 3, timestamp: 1_750_000_000 };
 * const claims = events.filter((e) => e.kind === "claimed"); // narrowed: e.provider is typed
 * ```
 */
export type MarketEvent = EventPosition &
  (
    | {
        /** JobCreated: a job was posted and its price escrowed. */
        kind: "created";
        jobId: string;
        consumer: string;
        paymentToken: string;
        /** Total price P, in payment-token base units. */
        price: bigint;
        workUnits: bigint;
        /** Packed `Requirements` word (decode with `unpackRequirements`). */
        requirements: bigint;
        /** Non-zero for jobs created from a provider's signed offer. */
        targetProvider: string;
      }
    | { kind: "claimed"; jobId: string; provider: string }
    | { kind: "committed"; jobId: string }
    | { kind: "settled"; jobId: string; provider: string }
    | { kind: "timedOut"; jobId: string; provider: string; toConsumer: bigint; returnedToProvider: bigint }
    | { kind: "reopened"; jobId: string }
    | { kind: "refunded"; jobId: string; consumer: string; amount: bigint }
    | { kind: "cancelled"; jobId: string; consumer: string; refund: bigint }
    /** JobVoided: the reveal window closed with the draw still impossible (randomness Pending); nobody at
     * fault, the collateral back to the provider (the consumer's refund is the `refunded` beside it). */
    | { kind: "voided"; jobId: string; provider: string; collateral: bigint }
    /** JobRevealMissed: the provider never revealed; treated as fraud. */
    | { kind: "revealMissed"; jobId: string; provider: string; toConsumer: bigint; toTreasury: bigint; stakeSlashed: bigint }
    | { kind: "auditDrawn"; jobId: string; audited: boolean; probabilityBps: number; failSafe: boolean }
    | { kind: "challenged"; jobId: string; challenger: string; bond: bigint }
    | { kind: "auditClaimed"; jobId: string; auditor: string }
    | { kind: "auditPassed"; jobId: string; provider: string; auditor: string; reward: bigint }
    | {
        kind: "fraudProven";
        jobId: string;
        provider: string;
        toConsumerSide: bigint;
        toAuditors: bigint;
        toTreasury: bigint;
        stakeSlashed: bigint;
      }
    /** An auditor lost a dispute (minority, or judged wrong by governance). */
    | { kind: "auditorSlashed"; jobId: string; auditor: string; collateral: bigint; stakeSlashed: bigint }
    /** An auditor or tie-breaker missed its deadline. */
    | { kind: "auditorStalled"; jobId: string; auditor: string; collateral: bigint }
    | { kind: "auditUnclaimed"; jobId: string }
    | { kind: "disputeEscalated"; jobId: string; deadline: number }
    | { kind: "escalationResolved"; jobId: string; verdict: Verdict; byGovernance: boolean }
    /** Registry: ProviderRegistered (the profile's GPU class and region). */
    | { kind: "providerRegistered"; provider: string; id: number; gpuClass: number; region: string }
    | { kind: "pricePosted"; provider: string; token: string; pricePerUnit: bigint }
    /** Registry: Slashed (MESH stake; the market event of the same transaction says why). */
    | { kind: "stakeSlashed"; provider: string; fromStake: bigint; fromUnbonding: bigint; bps: number }
    | { kind: "jailed"; provider: string; until: number }
  );

export type MarketEventKind = MarketEvent["kind"];

/** Decoders from a parsed log's arguments to a record's fields, by Solidity event name. */
type Decoder = (a: any) => Omit<MarketEvent, keyof EventPosition>;
const str = (v: unknown) => String(v);
const num = (v: unknown) => Number(v);
const big = (v: unknown) => BigInt(v as bigint);

const MARKET_DECODERS: Record<string, Decoder> = {
  JobCreated: (a) => ({
    kind: "created",
    jobId: str(a.jobId),
    consumer: str(a.consumer),
    paymentToken: str(a.job.request.paymentToken),
    price: big(a.job.request.price),
    workUnits: big(a.job.request.workUnits),
    requirements: big(a.job.request.requirements),
    targetProvider: str(a.job.request.targetProvider),
  }),
  JobClaimed: (a) => ({ kind: "claimed", jobId: str(a.jobId), provider: str(a.provider) }),
  JobCommitted: (a) => ({ kind: "committed", jobId: str(a.jobId) }),
  JobSettled: (a) => ({ kind: "settled", jobId: str(a.jobId), provider: str(a.provider) }),
  JobTimedOut: (a) => ({
    kind: "timedOut",
    jobId: str(a.jobId),
    provider: str(a.provider),
    toConsumer: big(a.toConsumer),
    returnedToProvider: big(a.returnedToProvider),
  }),
  JobReopened: (a) => ({ kind: "reopened", jobId: str(a.jobId) }),
  JobRefunded: (a) => ({ kind: "refunded", jobId: str(a.jobId), consumer: str(a.consumer), amount: big(a.amount) }),
  JobCancelled: (a) => ({ kind: "cancelled", jobId: str(a.jobId), consumer: str(a.consumer), refund: big(a.refund) }),
  JobVoided: (a) => ({ kind: "voided", jobId: str(a.jobId), provider: str(a.provider), collateral: big(a.collateral) }),
  JobRevealMissed: (a) => ({
    kind: "revealMissed",
    jobId: str(a.jobId),
    provider: str(a.provider),
    toConsumer: big(a.toConsumer),
    toTreasury: big(a.toTreasury),
    stakeSlashed: big(a.stakeSlashed),
  }),
  AuditDrawn: (a) => ({
    kind: "auditDrawn",
    jobId: str(a.jobId),
    audited: Boolean(a.audited),
    probabilityBps: num(a.probabilityBps),
    failSafe: Boolean(a.failSafe),
  }),
  JobChallenged: (a) => ({ kind: "challenged", jobId: str(a.jobId), challenger: str(a.challenger), bond: big(a.bond) }),
  AuditClaimed: (a) => ({ kind: "auditClaimed", jobId: str(a.jobId), auditor: str(a.auditor) }),
  AuditPassed: (a) => ({
    kind: "auditPassed",
    jobId: str(a.jobId),
    provider: str(a.provider),
    auditor: str(a.auditor),
    reward: big(a.reward),
  }),
  FraudProven: (a) => ({
    kind: "fraudProven",
    jobId: str(a.jobId),
    provider: str(a.provider),
    toConsumerSide: big(a.toConsumerSide),
    toAuditors: big(a.toAuditors),
    toTreasury: big(a.toTreasury),
    stakeSlashed: big(a.stakeSlashed),
  }),
  AuditorSlashed: (a) => ({
    kind: "auditorSlashed",
    jobId: str(a.jobId),
    auditor: str(a.auditor),
    collateral: big(a.collateral),
    stakeSlashed: big(a.stakeSlashed),
  }),
  AuditorStalled: (a) => ({ kind: "auditorStalled", jobId: str(a.jobId), auditor: str(a.auditor), collateral: big(a.collateral) }),
  AuditUnclaimed: (a) => ({ kind: "auditUnclaimed", jobId: str(a.jobId) }),
  DisputeEscalated: (a) => ({ kind: "disputeEscalated", jobId: str(a.jobId), deadline: num(a.deadline) }),
  EscalationResolved: (a) => ({
    kind: "escalationResolved",
    jobId: str(a.jobId),
    verdict: VERDICTS[num(a.verdict)],
    byGovernance: Boolean(a.byGovernance),
  }),
};

const REGISTRY_DECODERS: Record<string, Decoder> = {
  ProviderRegistered: (a) => ({
    kind: "providerRegistered",
    provider: str(a.provider),
    id: num(a.id),
    gpuClass: num(a.profile.gpuClass),
    region: regionName(BigInt(a.profile.region)),
  }),
  PricePosted: (a) => ({ kind: "pricePosted", provider: str(a.provider), token: str(a.token), pricePerUnit: big(a.pricePerUnit) }),
  Slashed: (a) => ({
    kind: "stakeSlashed",
    provider: str(a.provider),
    fromStake: big(a.fromStake),
    fromUnbonding: big(a.fromUnbonding),
    bps: num(a.bps),
  }),
  Jailed: (a) => ({ kind: "jailed", provider: str(a.provider), until: num(a.until) }),
};

/**
 * The contracts {@link loadEvents} reads: typechain `JobMarket` (or `IJobMarket`, the same address) and
 * `ProviderRegistry`; only their address and ABI are used.
 *
 * @example
 * ```ts
 * const contracts: StatsContracts = { market: sys.market, registry: sys.registry };
 * ```
 */
export interface StatsContracts {
  market: BaseContract;
  registry: BaseContract;
}

/**
 * @example
 * ```ts
 * { fromBlock: 5_000_000, toBlock: 5_100_000, provider, blockRange: 2_000 } // an RPC capped at 2,000 blocks
 * ```
 */
export interface LoadEventsOptions {
  /** First block to read (the market's deployment block is a good start). */
  fromBlock: number;
  /** Last block to read, inclusive; the latest block when omitted. */
  toBlock?: number;
  /** The provider to read with; the market's runner's provider when omitted. */
  provider?: Provider;
  /** Blocks per `eth_getLogs` request (default 10,000, a limit most public RPCs accept). */
  blockRange?: number;
  /** Block headers fetched in parallel for timestamps (default 8). */
  concurrency?: number;
  /**
   * Reads the logs of `fromBlock..toBlock` through `query` (one range at a time), in place of the fixed
   * `blockRange` steps: `Meshwork.stats()` passes its context's reader, which narrows the range when an
   * RPC caps it.
   */
  readLogs?: (query: (fromBlock: number, toBlock: number) => Promise<Log[]>, fromBlock: number, toBlock: number) => Promise<Log[]>;
  /** Makes each RPC request, typing its failure (default: a {@link MeshworkError} with the cause). */
  call?: <T>(what: string, request: () => Promise<T>) => Promise<T>;
}

/** The topic0 of every event `decoders` handles that `iface` declares. */
function topicsOf(iface: Interface, decoders: Record<string, Decoder>): string[] {
  return Object.keys(decoders)
    .map((name) => iface.getEvent(name)?.topicHash)
    .filter((t): t is string => t !== undefined);
}

/**
 * Reads the market's and the registry's events in `[fromBlock, toBlock]` into {@link MarketEvent}
 * records sorted by (block, logIndex).
 *
 * Logs are fetched with `eth_getLogs` in pages of `blockRange` blocks, filtered by address and by the
 * topics of the events loaded; each block's timestamp is fetched once and cached. The audit module runs
 * inside the market by delegatecall, so its events (audits, disputes, escalations) carry the market's
 * address; they are declared in IJobMarketTypes, so the market's ABI (JobMarket or IJobMarket) decodes
 * them too.
 *
 * @throws MeshworkError when no provider is available or an RPC request fails (the cause is attached).
 * @example
 * ```ts
 * const market = JobMarket__factory.connect(book.market, provider);
 * const registry = ProviderRegistry__factory.connect(book.registry, provider);
 * const events = await loadEvents({ market, registry }, { fromBlock: book.deployBlock, provider });
 * ```
 */
export async function loadEvents(contracts: StatsContracts, options: LoadEventsOptions): Promise<MarketEvent[]> {
  const provider = options.provider ?? contracts.market.runner?.provider ?? undefined;
  if (!provider) throw new MeshworkError("loadEvents needs a provider: pass options.provider or connect the market to one");
  const range = options.blockRange ?? 10_000;
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(range) || range < 1) throw new MeshworkError("blockRange must be a positive integer", { details: { range } });

  const rpc =
    options.call ??
    (async <T>(what: string, call: () => Promise<T>): Promise<T> => {
      try {
        return await call();
      } catch (cause) {
        throw new MeshworkError(`loadEvents: ${what} failed`, { cause });
      }
    });

  const marketAddress = (await contracts.market.getAddress()).toLowerCase();
  const registryAddress = (await contracts.registry.getAddress()).toLowerCase();
  const sources = new Map([
    [marketAddress, { iface: contracts.market.interface, decoders: MARKET_DECODERS }],
    [registryAddress, { iface: contracts.registry.interface, decoders: REGISTRY_DECODERS }],
  ]);
  const topics = [...new Set([...sources.values()].flatMap((s) => topicsOf(s.iface, s.decoders)))];
  const toBlock = options.toBlock ?? (await rpc("eth_blockNumber", () => provider.getBlockNumber()));

  const timestamps = new Map<number, number>();
  const fetchTimestamps = async (blocks: number[]) => {
    const missing = [...new Set(blocks)].filter((b) => !timestamps.has(b));
    for (let i = 0; i < missing.length; i += concurrency) {
      await Promise.all(
        missing.slice(i, i + concurrency).map(async (n) => {
          const block = await rpc(`eth_getBlockByNumber(${n})`, () => provider.getBlock(n));
          if (!block) throw new MeshworkError(`loadEvents: block ${n} not found`);
          timestamps.set(n, block.timestamp);
        }),
      );
    }
  };

  const query = (from: number, to: number) => provider.getLogs({ address: [marketAddress, registryAddress], topics: [topics], fromBlock: from, toBlock: to });
  const ranges: (() => Promise<Log[]>)[] = [];
  if (options.readLogs) {
    const read = options.readLogs;
    ranges.push(() => read(query, options.fromBlock, toBlock));
  } else {
    for (let from = options.fromBlock; from <= toBlock; from += range) {
      const to = Math.min(from + range - 1, toBlock);
      ranges.push(() => rpc(`eth_getLogs(${from}..${to})`, () => query(from, to)));
    }
  }
  const records: MarketEvent[] = [];
  for (const readRange of ranges) {
    const logs = await readRange();
    const live = logs.filter((l) => !l.removed);
    await fetchTimestamps(live.map((l) => l.blockNumber));
    for (const log of live) {
      const source = sources.get(log.address.toLowerCase());
      if (!source) continue;
      const parsed = source.iface.parseLog({ topics: [...log.topics], data: log.data });
      const decode = parsed && source.decoders[parsed.name];
      if (!decode) continue;
      records.push({
        ...decode(parsed.args),
        block: log.blockNumber,
        logIndex: log.index,
        timestamp: timestamps.get(log.blockNumber)!,
        txHash: log.transactionHash,
      } as MarketEvent);
    }
  }
  return records.sort(byPosition);
}

function byPosition(a: EventPosition, b: EventPosition): number {
  return a.block - b.block || a.logIndex - b.logIndex;
}

/* ------------------------------------------------------------------------------------------------ */
/* Statistics                                                                                        */
/* ------------------------------------------------------------------------------------------------ */

/**
 * Nearest-rank percentiles of a set of durations in seconds: pX is the smallest value such that at
 * least X% of the values are less or equal (the value at rank ceil(X/100 · count) in ascending order).
 * All three are null when `count` is 0.
 *
 * @example
 * ```ts
 * // durations 10, 20, ..., 100 -> { count: 10, p50: 50, p90: 90, p99: 100 }
 * ```
 */
export interface Percentiles {
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

/**
 * Queue time of a job: seconds from its `JobCreated` to its *first* `JobClaimed` (a claim after a
 * timeout does not count again). Jobs created through a signed offer are claimed in the same
 * transaction (queue time 0). Only jobs whose creation and first claim are both among the events count;
 * `waiting` is the number of jobs still open and never claimed.
 *
 * Grouped by the job's *required* GPU class (`0` = any class) and required region (ISO code, `""` = any
 * region), from its packed `requirements`.
 *
 * @example
 * ```ts
 * const { byGpuClass, byRegion } = stats.queueTime;
 * console.log(`class 7: p90 ${byGpuClass[7]?.p90}s, DE: p50 ${byRegion["DE"]?.p50}s, any region: ${byRegion[""]?.p50}s`);
 * ```
 */
export interface QueueTimes {
  all: Percentiles;
  byGpuClass: Record<number, Percentiles>;
  byRegion: Record<string, Percentiles>;
  waiting: number;
}

/**
 * The price board of one payment token, over every job created among the events. A job's price per
 * work unit is `price / workUnits`, rounded down to the token's base unit.
 * - `latest`: the price per unit of the most recently created job;
 * - `median`: the nearest-rank median (p50, see {@link Percentiles}) of the jobs' prices per unit;
 * - `min`, `max`: the lowest and highest price per unit; `count`: the number of jobs.
 *
 * @example
 * ```ts
 * // jobs of 100/10, 30/2, 8/1 tUSD -> { count: 3, latest: 8, median: 10, min: 8, max: 15 } (in base units)
 * ```
 */
export interface PriceBoardEntry {
  count: number;
  latest: bigint;
  median: bigint;
  min: bigint;
  max: bigint;
}

/**
 * The price index of one payment token: the volume-weighted mean price per work unit of the jobs
 * created in the stats window, `sum(price) / sum(workUnits)` (rounded down), i.e. every work unit
 * bought in the window weighs the same. `volume` is `sum(price)`, `workUnits` the sum of work units,
 * `jobs` their number. Tokens with no job in the window are absent.
 *
 * @example
 * ```ts
 * // in the window: 100 for 10 units and 60 for 10 units -> { pricePerUnit: 8n, volume: 160n, workUnits: 20n, jobs: 2 }
 * ```
 */
export interface PriceIndexEntry {
  pricePerUnit: bigint;
  volume: bigint;
  workUnits: bigint;
  jobs: number;
}

/**
 * Utilisation over the stats window `[from, to]`. A provider is *busy* with a job from its
 * `JobClaimed` until it commits (`JobCommitted`), times out (`JobTimedOut`) or the job ends otherwise;
 * a job still being computed at `to` counts as busy until `to`. (Waiting for the challenge window and
 * audit re-execution are not counted: the provider's GPUs are free then.)
 * - `jobsInFlight`: the time-averaged number of jobs being computed;
 * - `busyProviders`: the time-averaged number of providers computing at least one job;
 * - `providers`: the providers known from the events (registered, or seen claiming);
 * - `utilisation`: busy provider-seconds / available provider-seconds, between 0 and 1, where a known
 *   provider is available from the later of `from` and its registration until `to` (a provider with
 *   several jobs at once counts as busy once). 0 when no provider is known.
 *
 * @example
 * ```ts
 * // window of 100 s, two providers registered before it, one busy for 50 s -> utilisation 0.25
 * ```
 */
export interface Utilisation {
  from: number;
  to: number;
  providers: number;
  jobsInFlight: number;
  busyProviders: number;
  utilisation: number;
}

/**
 * How one provider's claims ended, and its audits.
 * - `claimed`: `JobClaimed` events for it; `settled`: jobs it was paid for (`JobSettled`);
 *   `timedOut`: claims it did not commit in time; `slashed`: its jobs that ended in a fraud verdict
 *   (`FraudProven`) or a missed reveal (`JobRevealMissed`).
 * - `reliability = settled / (settled + timedOut + slashed)`: the share of its finished claims that it
 *   delivered; null while none finished. Refunds after a no-fault escalation, and voids (`JobVoided`:
 *   the draw's randomness never came), are nobody's fault and do not count.
 * - `audited`/`auditsPassed`: audits of its work (`AuditPassed`, `FraudProven`) and how many passed.
 * - As an auditor: `auditsDone` (`AuditClaimed`), `auditorSlashed` (lost a dispute), `auditorStalled`
 *   (missed a deadline).
 *
 * @example
 * ```ts
 * // 4 claims: 3 settled, 1 timed out -> reliability 0.75
 * ```
 */
export interface ProviderReliability {
  claimed: number;
  settled: number;
  timedOut: number;
  slashed: number;
  reliability: number | null;
  audited: number;
  auditsPassed: number;
  auditsDone: number;
  auditorSlashed: number;
  auditorStalled: number;
}

/**
 * Why an account lost collateral or stake, from the market event that says it:
 * - `timeout` (`JobTimedOut`): `timeoutSlashBps` of the claimant's collateral went to the consumer;
 * - `revealMissed` (`JobRevealMissed`): the provider never revealed, treated as fraud;
 * - `fraud` (`FraudProven`): an audit (or governance) found the provider's result wrong;
 * - `auditorMinority` (`AuditorSlashed`): an auditor lost the dispute;
 * - `auditorStalled` (`AuditorStalled`): an auditor or tie-breaker missed its deadline.
 *
 * @example
 * ```ts
 * const frauds = stats.slashes.filter((s) => s.reason === "fraud" || s.reason === "revealMissed");
 * ```
 */
export type SlashReason = "timeout" | "revealMissed" | "fraud" | "auditorMinority" | "auditorStalled";

/**
 * One penalty. `amount` is the collateral forfeited, in the job's payment token (`token`, undefined when
 * the job's creation is not among the events); `stakeSlashed` the MESH stake slashed (0 for timeouts and
 * stalls, which cost collateral only).
 *
 * @example
 * ```ts
 * // { provider: "0xabc…", jobId: "0x12…", reason: "timeout", amount: 40_000_000n, stakeSlashed: 0n, … }
 * ```
 */
export interface Slash {
  provider: string;
  jobId: string;
  reason: SlashReason;
  amount: bigint;
  stakeSlashed: bigint;
  token?: string;
  timestamp: number;
  block: number;
}

/**
 * Audit counts:
 * - `drawn`: `AuditDrawn` events, `failSafe` of them audited because the randomness had expired. A
 *   draw folded into `settle` or `audit` is not announced, so `drawn` undercounts draws;
 * - `audited`: distinct jobs drawn for audit (an announced draw, or an auditor's claim, which folds the
 *   draw), challenged jobs included once an auditor claims them;
 * - `challenged`, `claimed` (audits an auditor took), `passed`, `fraud` (fraud proven),
 *   `auditorSlashed`, `auditorStalled`, `unclaimed` (no auditor came), `escalated` disputes and
 *   `resolved` escalations (by governance or by deadline): the number of such events.
 *
 * @example
 * ```ts
 * const { audited, passed, fraud } = stats.audits;
 * console.log(`${passed}/${audited} audits passed, ${fraud} frauds caught`);
 * ```
 */
export interface AuditStats {
  drawn: number;
  audited: number;
  failSafe: number;
  challenged: number;
  claimed: number;
  passed: number;
  fraud: number;
  auditorSlashed: number;
  auditorStalled: number;
  unclaimed: number;
  escalated: number;
  resolved: number;
}

/**
 * The state of a job after its last event: `open` (never claimed, or reopened after a timeout),
 * `claimed` (being computed), `committed` (result committed, not drawn for audit), `inAudit` (drawn for
 * audit or challenged, disputed or escalated), and the final states `settled`, `slashed`, `refunded`,
 * `cancelled`.
 *
 * @example
 * ```ts
 * const { settled, slashed, refunded, cancelled } = stats.jobs.byState;
 * const successRate = settled / (settled + slashed + refunded + cancelled);
 * ```
 */
export type JobStatus = "open" | "claimed" | "committed" | "inAudit" | "settled" | "slashed" | "refunded" | "cancelled";
const STATUSES: JobStatus[] = ["open", "claimed", "committed", "inAudit", "settled", "slashed", "refunded", "cancelled"];

/**
 * Everything {@link computeStats} returns; each part's definitions are on its type.
 *
 * @example
 * ```ts
 * const { queueTime, priceBoard, utilisation } = computeStats(events);
 * console.log(queueTime.all.p50, priceBoard[usd]?.median, utilisation.utilisation);
 * ```
 */
export interface MarketStats {
  /** The window of the price index and utilisation, unix seconds. */
  window: { from: number; to: number };
  /** Jobs seen in any event (`total`), by their state after the last event. */
  jobs: { total: number; byState: Record<JobStatus, number> };
  queueTime: QueueTimes;
  /** Price board by payment-token address. */
  priceBoard: Record<string, PriceBoardEntry>;
  /** Price index by payment-token address. */
  priceIndex: Record<string, PriceIndexEntry>;
  utilisation: Utilisation;
  /** Reliability by provider address. */
  providers: Record<string, ProviderReliability>;
  audits: AuditStats;
  /** Every penalty, in chain order. */
  slashes: Slash[];
}

/**
 * @example
 * ```ts
 * computeStats(events, { now: Math.floor(Date.now() / 1000), window: 24 * 3600 }); // the last day
 * ```
 */
export interface ComputeStatsOptions {
  /** End of the stats window, unix seconds; the last event's timestamp by default (keeps this pure). */
  now?: number;
  /**
   * Length of the stats window in seconds (default 7 days). The window is `[now - window, now]`, but
   * starts no earlier than the first event, so a young market's averages are not diluted.
   */
  window?: number;
}

/** What computeStats tracks per job (every field set at creation, so all share one shape). */
interface JobTrack {
  status: JobStatus;
  /** Creation time, -1 when the creation is not among the events. */
  createdAt: number;
  claimed: boolean;
  token: string | undefined;
  /** Required GPU class and region (from the creation). */
  group: Group | undefined;
  /** The provider computing it, and since when (undefined when nobody is). */
  computing: string | undefined;
  since: number;
}

function percentiles(values: Float64Array): Percentiles {
  const n = values.length;
  if (n === 0) return { count: 0, p50: null, p90: null, p99: null };
  values.sort();
  const at = (p: number) => values[Math.max(0, Math.ceil((p / 100) * n) - 1)];
  return { count: n, p50: at(50), p90: at(90), p99: at(99) };
}

function newProvider(): ProviderReliability {
  return {
    claimed: 0,
    settled: 0,
    timedOut: 0,
    slashed: 0,
    reliability: null,
    audited: 0,
    auditsPassed: 0,
    auditsDone: 0,
    auditorSlashed: 0,
    auditorStalled: 0,
  };
}

/** The GPU class and region a job requires, decoded once per distinct requirements word. */
type Group = { gpuClass: number; region: string };
function groupDecoder(): (requirements: bigint) => Group {
  const cache = new Map<bigint, Group>();
  return (requirements) => {
    let group = cache.get(requirements);
    if (!group) {
      const { gpuClass, region } = unpackRequirements(requirements);
      cache.set(requirements, (group = { gpuClass, region }));
    }
    return group;
  };
}

const compareBig = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Computes the transparency statistics of PROTOCOL.md §10 from event records (as {@link loadEvents}
 * returns them, in chain order; records out of order are sorted first). Pure: no RPC, no clock
 * (`now` defaults to the last event's timestamp). O(n log n) in the number of events.
 *
 * Queue times, the price board, reliability, audits, slashes and job states cover every event given
 * (choose the range with `loadEvents`' blocks); the price index and utilisation cover the window.
 * See {@link QueueTimes}, {@link PriceBoardEntry}, {@link PriceIndexEntry}, {@link Utilisation},
 * {@link ProviderReliability}, {@link Slash}, {@link AuditStats} and {@link JobStatus} for the
 * definitions.
 *
 * @example
 * ```ts
 * const stats = computeStats(events, { window: 24 * 3600 });
 * console.table(Object.entries(stats.providers).map(([address, r]) => ({ address, ...r })));
 * console.log(`${(stats.utilisation.utilisation * 100).toFixed(1)}% busy, ${stats.slashes.length} slashes`);
 * ```
 */
export function computeStats(events: readonly MarketEvent[], options: ComputeStatsOptions = {}): MarketStats {
  let ordered = events;
  for (let i = 1; i < events.length; i++) {
    const a = events[i - 1];
    const b = events[i];
    if (a.block > b.block || (a.block === b.block && a.logIndex > b.logIndex)) {
      ordered = [...events].sort(byPosition);
      break;
    }
  }
  const to = options.now ?? (ordered.length ? ordered[ordered.length - 1].timestamp : 0);
  const first = ordered.length ? ordered[0].timestamp : to;
  const from = Math.min(to, Math.max(to - (options.window ?? 7 * 86_400), first));

  const jobs = new Map<string, JobTrack>();
  const providers = new Map<string, ProviderReliability>();
  const registeredAt = new Map<string, number>();
  /** Per provider: how many jobs it is computing, and since when it has been busy. */
  const activity = new Map<string, { jobs: number; since: number }>();
  let inFlightSeconds = 0;
  let busySeconds = 0;
  /** Seconds of [s, t] inside the window. */
  const overlap = (s: number, t: number) => Math.max(0, Math.min(t, to) - Math.max(s, from));
  const queueAll: number[] = [];
  const queueByClass = new Map<number, number[]>();
  const queueByRegion = new Map<string, number[]>();
  const unitPrices = new Map<string, bigint[]>();
  const latest = new Map<string, bigint>();
  const index = new Map<string, PriceIndexEntry>();
  const groupOf = groupDecoder();
  const audits: AuditStats = {
    drawn: 0,
    audited: 0,
    failSafe: 0,
    challenged: 0,
    claimed: 0,
    passed: 0,
    fraud: 0,
    auditorSlashed: 0,
    auditorStalled: 0,
    unclaimed: 0,
    escalated: 0,
    resolved: 0,
  };
  const slashes: Slash[] = [];
  const auditedJobs = new Set<string>();

  const job = (jobId: string): JobTrack => {
    let j = jobs.get(jobId);
    if (!j) {
      j = { status: "open", createdAt: -1, claimed: false, token: undefined, group: undefined, computing: undefined, since: 0 };
      jobs.set(jobId, j);
    }
    return j;
  };
  const provider = (address: string): ProviderReliability => {
    let p = providers.get(address);
    if (!p) providers.set(address, (p = newProvider()));
    return p;
  };
  // Events come in time order, so a sweep gives the union of each provider's busy intervals directly.
  const startComputing = (j: JobTrack, who: string, at: number) => {
    j.computing = who;
    j.since = at;
    let a = activity.get(who);
    if (!a) activity.set(who, (a = { jobs: 0, since: at }));
    if (a.jobs++ === 0) a.since = at;
  };
  const stopComputing = (j: JobTrack, at: number) => {
    if (j.computing === undefined) return;
    inFlightSeconds += overlap(j.since, at);
    const a = activity.get(j.computing)!;
    if (--a.jobs === 0) busySeconds += overlap(a.since, at);
    j.computing = undefined;
  };
  const push = <K>(map: Map<K, number[]>, key: K, value: number) => {
    const list = map.get(key);
    if (list) list.push(value);
    else map.set(key, [value]);
  };
  const slash = (e: MarketEvent & { jobId: string }, who: string, reason: SlashReason, amount: bigint, stakeSlashed: bigint) => {
    slashes.push({ provider: who, jobId: e.jobId, reason, amount, stakeSlashed, token: jobs.get(e.jobId)?.token, timestamp: e.timestamp, block: e.block });
  };

  for (const e of ordered) {
    switch (e.kind) {
      case "created": {
        const j = job(e.jobId);
        j.status = "open";
        j.createdAt = e.timestamp;
        j.token = e.paymentToken;
        j.group = groupOf(e.requirements);
        const unit = e.price / e.workUnits;
        const prices = unitPrices.get(e.paymentToken);
        if (prices) prices.push(unit);
        else unitPrices.set(e.paymentToken, [unit]);
        latest.set(e.paymentToken, unit);
        if (e.timestamp >= from && e.timestamp <= to) {
          const ix = index.get(e.paymentToken) ?? { pricePerUnit: 0n, volume: 0n, workUnits: 0n, jobs: 0 };
          ix.volume += e.price;
          ix.workUnits += e.workUnits;
          ix.jobs++;
          index.set(e.paymentToken, ix);
        }
        break;
      }
      case "claimed": {
        const j = job(e.jobId);
        stopComputing(j, e.timestamp);
        if (!j.claimed) {
          j.claimed = true;
          const group = j.group;
          if (group && j.createdAt >= 0) {
            const wait = e.timestamp - j.createdAt;
            queueAll.push(wait);
            push(queueByClass, group.gpuClass, wait);
            push(queueByRegion, group.region, wait);
          }
        }
        j.status = "claimed";
        startComputing(j, e.provider, e.timestamp);
        provider(e.provider).claimed++;
        break;
      }
      case "committed": {
        const j = job(e.jobId);
        stopComputing(j, e.timestamp);
        j.status = "committed";
        break;
      }
      case "timedOut": {
        const j = job(e.jobId);
        stopComputing(j, e.timestamp);
        j.status = "open"; // JobReopened, JobRefunded or a new JobClaimed follows in the same transaction
        provider(e.provider).timedOut++;
        slash(e, e.provider, "timeout", e.toConsumer, 0n);
        break;
      }
      case "reopened":
        job(e.jobId).status = "open";
        break;
      case "settled": {
        const j = job(e.jobId);
        stopComputing(j, e.timestamp);
        j.status = "settled";
        provider(e.provider).settled++;
        break;
      }
      case "refunded":
      case "cancelled": {
        const j = job(e.jobId);
        stopComputing(j, e.timestamp);
        j.status = e.kind;
        break;
      }
      case "revealMissed": {
        const j = job(e.jobId);
        stopComputing(j, e.timestamp);
        j.status = "slashed";
        provider(e.provider).slashed++;
        slash(e, e.provider, "revealMissed", e.toConsumer + e.toTreasury, e.stakeSlashed);
        break;
      }
      case "auditDrawn":
        audits.drawn++;
        if (e.audited) {
          auditedJobs.add(e.jobId);
          job(e.jobId).status = "inAudit";
        }
        if (e.failSafe) audits.failSafe++;
        break;
      case "challenged":
        audits.challenged++;
        job(e.jobId).status = "inAudit";
        break;
      case "auditClaimed":
        audits.claimed++;
        auditedJobs.add(e.jobId);
        job(e.jobId).status = "inAudit";
        provider(e.auditor).auditsDone++;
        break;
      case "auditPassed": {
        audits.passed++;
        const p = provider(e.provider);
        p.audited++;
        p.auditsPassed++;
        break;
      }
      case "fraudProven": {
        audits.fraud++;
        const j = job(e.jobId);
        stopComputing(j, e.timestamp);
        j.status = "slashed";
        const p = provider(e.provider);
        p.audited++;
        p.slashed++;
        slash(e, e.provider, "fraud", e.toConsumerSide + e.toAuditors + e.toTreasury, e.stakeSlashed);
        break;
      }
      case "auditorSlashed":
        audits.auditorSlashed++;
        provider(e.auditor).auditorSlashed++;
        slash(e, e.auditor, "auditorMinority", e.collateral, e.stakeSlashed);
        break;
      case "auditorStalled":
        audits.auditorStalled++;
        provider(e.auditor).auditorStalled++;
        slash(e, e.auditor, "auditorStalled", e.collateral, 0n);
        break;
      case "auditUnclaimed":
        audits.unclaimed++;
        job(e.jobId).status = "committed";
        break;
      case "disputeEscalated":
        audits.escalated++;
        job(e.jobId).status = "inAudit";
        break;
      case "escalationResolved":
        audits.resolved++;
        break;
      case "providerRegistered":
        if (!registeredAt.has(e.provider)) registeredAt.set(e.provider, e.timestamp);
        provider(e.provider);
        break;
      case "pricePosted":
      case "stakeSlashed":
      case "jailed":
        provider(e.provider);
        break;
    }
  }

  audits.audited = auditedJobs.size;

  // Queue times.
  const groups = <K extends string | number>(map: Map<K, number[]>) => {
    const out = {} as Record<K, Percentiles>;
    for (const [key, values] of map) out[key] = percentiles(Float64Array.from(values));
    return out;
  };
  const queueTime: QueueTimes = {
    all: percentiles(Float64Array.from(queueAll)),
    byGpuClass: groups(queueByClass),
    byRegion: groups(queueByRegion),
    waiting: 0,
  };

  // Jobs by state.
  const byState = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
  for (const j of jobs.values()) {
    byState[j.status]++;
    if (j.status === "open" && !j.claimed && j.createdAt >= 0) queueTime.waiting++;
    stopComputing(j, to); // still computing at the end of the window
  }

  // Price board and index.
  const priceBoard: Record<string, PriceBoardEntry> = {};
  for (const [token, prices] of unitPrices) {
    prices.sort(compareBig);
    const n = prices.length;
    priceBoard[token] = { count: n, latest: latest.get(token)!, median: prices[Math.ceil(n / 2) - 1], min: prices[0], max: prices[n - 1] };
  }
  const priceIndex: Record<string, PriceIndexEntry> = {};
  for (const [token, ix] of index) priceIndex[token] = { ...ix, pricePerUnit: ix.workUnits > 0n ? ix.volume / ix.workUnits : 0n };

  // Utilisation.
  const span = to - from;
  let available = 0;
  let known = 0;
  for (const address of providers.keys()) {
    const since = Math.max(from, registeredAt.get(address) ?? from);
    if (since > to) continue;
    known++;
    available += to - since;
  }
  const utilisation: Utilisation = {
    from,
    to,
    providers: known,
    jobsInFlight: span > 0 ? inFlightSeconds / span : 0,
    busyProviders: span > 0 ? busySeconds / span : 0,
    utilisation: available > 0 ? Math.min(1, busySeconds / available) : 0,
  };

  // Reliability.
  const providerStats: Record<string, ProviderReliability> = {};
  for (const [address, p] of providers) {
    const finished = p.settled + p.timedOut + p.slashed;
    p.reliability = finished > 0 ? p.settled / finished : null;
    providerStats[address] = p;
  }

  return {
    window: { from, to },
    jobs: { total: jobs.size, byState },
    queueTime,
    priceBoard,
    priceIndex,
    utilisation,
    providers: providerStats,
    audits,
    slashes,
  };
}
