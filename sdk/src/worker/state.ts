/**
 * The worker's crash-safe local state (node:sqlite, one file in the data directory): every job it has
 * seen, its role and phase in each, and what it must never lose — the salt is written *before* the
 * commit is sent, the audit leaves before the audit is claimed — so a restart resumes every job where it
 * was and never commits twice or reveals something else than it committed.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { createRequire } from "node:module";
import type { DatabaseSync } from "node:sqlite";
import type { JobStruct } from "../params.js";
import { jobFromResult } from "../params.js";

/** What the worker does in a job. */
export type Role = "none" | "provider" | "auditor" | "tieBreaker";

/**
 * A job's phase for this worker. Provider: claimed → computed → committing (salt saved) → committed →
 * revealed → done; failed: claimed, but its outputs cannot be encoded (the job's own fault: NaN, out of
 * range), followed until it times out. Auditor/tie-breaker: auditing (leaves saved) → audit-committed → done.
 */
export type Phase =
  | "seen"
  | "rejected"
  | "claimed"
  | "failed"
  | "computed"
  | "committing"
  | "committed"
  | "revealed"
  | "auditing"
  | "audit-committed"
  | "done";

export interface JobRow {
  jobId: string;
  job: JobStruct;
  createdBlock: number;
  role: Role;
  phase: Phase;
  /** The provider's salt (hex), saved before the commit. */
  salt?: string;
  /** Result root and output URI (provider), as committed. */
  root?: string;
  outputURI?: string;
  /** Provider: the output manifest JSON; auditor: the sampled leaves JSON (see {@link AuditData}). */
  data?: string;
  /** Provider: its claim's transaction and block, to tell a claim a reorg dropped from a stale read. */
  claimTx?: string;
  claimBlock?: number;
  claimBlockHash?: string;
  /** Why it was rejected or how it ended. */
  note?: string;
  /** When this worker claimed it (unix ms), for the duration metric. */
  startedAt?: number;
  updatedAt: number;
}

const bigintJson = (value: unknown) => JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `${v}n` : v));
const parseBigintJson = (text: string) => JSON.parse(text, (_, v) => (typeof v === "string" && /^\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v));

export class WorkerState {
  readonly #db: DatabaseSync;

  /** Opens (or creates) the database at `path` (":memory:" for tests). */
  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    // Loaded on first use, so a CLI can quiet Node's experimental-feature warning before it is printed.
    const { DatabaseSync: Database } = createRequire(import.meta.url)("node:sqlite") as typeof import("node:sqlite");
    this.#db = new Database(path);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = FULL;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT PRIMARY KEY, job TEXT NOT NULL, created_block INTEGER NOT NULL,
        role TEXT NOT NULL, phase TEXT NOT NULL, salt TEXT, root TEXT, output_uri TEXT, data TEXT,
        note TEXT, started_at INTEGER, updated_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS jobs_phase ON jobs (phase);
    `);
    // Columns added since the first release: a database from an older version gains them.
    for (const [column, type] of [["claim_tx", "TEXT"], ["claim_block", "INTEGER"], ["claim_block_hash", "TEXT"]]) {
      const columns = (this.#db.prepare("PRAGMA table_info(jobs)").all() as { name: string }[]).map((c) => c.name);
      if (columns.includes(column)) continue;
      try {
        this.#db.exec(`ALTER TABLE jobs ADD COLUMN ${column} ${type}`);
      } catch (error) {
        if (!/duplicate column/i.test(String((error as Error).message))) throw error; // another process added it meanwhile
      }
    }
  }

  getMeta(key: string): string | undefined {
    const row = this.#db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string): void {
    this.#db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  /** Records a job the first time it is seen (idempotent). */
  see(jobId: string, job: JobStruct, createdBlock: number): void {
    this.#db
      .prepare("INSERT OR IGNORE INTO jobs (job_id, job, created_block, role, phase, updated_at) VALUES (?, ?, ?, 'none', 'seen', ?)")
      .run(jobId, bigintJson(job), createdBlock, Date.now());
  }

  get(jobId: string): JobRow | undefined {
    const row = this.#db.prepare("SELECT * FROM jobs WHERE job_id = ?").get(jobId);
    return row ? toRow(row) : undefined;
  }

  /** Updates some fields of a job (durably: each call is one transaction). */
  update(jobId: string, fields: Partial<Omit<JobRow, "jobId" | "job" | "createdBlock" | "updatedAt">>): void {
    const columns: Record<string, string> = {
      role: "role",
      phase: "phase",
      salt: "salt",
      root: "root",
      outputURI: "output_uri",
      data: "data",
      note: "note",
      startedAt: "started_at",
      claimTx: "claim_tx",
      claimBlock: "claim_block",
      claimBlockHash: "claim_block_hash",
    };
    const sets: string[] = [];
    const values: (string | number | null)[] = [];
    for (const [key, value] of Object.entries(fields)) {
      sets.push(`${columns[key]} = ?`);
      values.push(value === undefined ? null : (value as string | number));
    }
    sets.push("updated_at = ?");
    values.push(Date.now());
    this.#db.prepare(`UPDATE jobs SET ${sets.join(", ")} WHERE job_id = ?`).run(...values, jobId);
  }

  /** Jobs not finished for this worker (rejected ones may still be audited), oldest first. */
  active(): JobRow[] {
    return this.#db
      .prepare("SELECT * FROM jobs WHERE phase <> 'done' ORDER BY created_block, job_id")
      .all()
      .map(toRow);
  }

  /** Every job in a phase. */
  inPhase(...phases: Phase[]): JobRow[] {
    const marks = phases.map(() => "?").join(", ");
    return this.#db.prepare(`SELECT * FROM jobs WHERE phase IN (${marks}) ORDER BY created_block`).all(...phases).map(toRow);
  }

  /** Puts the jobs rejected for one of `notes` back to `seen`, to be considered again; returns how many. */
  reconsider(notes: string[]): number {
    const marks = notes.map(() => "?").join(", ");
    return Number(this.#db.prepare(`UPDATE jobs SET phase = 'seen', note = NULL, updated_at = ? WHERE phase = 'rejected' AND note IN (${marks})`).run(Date.now(), ...notes).changes);
  }

  /**
   * Deletes the jobs finished (`done`) before `before` (unix ms), so the database does not grow with
   * every job the node has ever seen; returns how many. A job is only recorded when the scan first
   * reads its creation, so a forgotten job is never seen again.
   */
  forgetDone(before: number): number {
    return Number(this.#db.prepare("DELETE FROM jobs WHERE phase = 'done' AND updated_at < ?").run(before).changes);
  }

  /** Counts by role and phase (for `status`). */
  summary(): { role: Role; phase: Phase; count: number }[] {
    return this.#db.prepare("SELECT role, phase, COUNT(*) AS count FROM jobs GROUP BY role, phase ORDER BY role, phase").all() as never;
  }

  close(): void {
    this.#db.close();
  }
}

/** What an auditor or tie-breaker saves before its claim: its leaves, and the sample they answer ("i,j,…"). */
export interface AuditData {
  leaves: string[];
  /** Missing in rows saved by versions before 2026-12-07 (a bare array of leaves). */
  sample?: string;
}

/** A row's saved audit leaves and sample, from either format. */
export function auditDataOf(data: string): AuditData {
  const parsed = JSON.parse(data) as string[] | AuditData;
  return Array.isArray(parsed) ? { leaves: parsed } : parsed;
}

function toRow(r: any): JobRow {
  return {
    jobId: r.job_id,
    job: jobFromResult(parseBigintJson(r.job)),
    createdBlock: Number(r.created_block),
    role: r.role,
    phase: r.phase,
    salt: r.salt ?? undefined,
    root: r.root ?? undefined,
    outputURI: r.output_uri ?? undefined,
    data: r.data ?? undefined,
    note: r.note ?? undefined,
    startedAt: r.started_at ?? undefined,
    claimTx: r.claim_tx ?? undefined,
    claimBlock: r.claim_block ?? undefined,
    claimBlockHash: r.claim_block_hash ?? undefined,
    updatedAt: Number(r.updated_at),
  };
}
