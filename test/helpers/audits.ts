/**
 * Plays the off-chain side of audits in tests: honest or fabricated results as real SHA-256 Merkle
 * trees (sdk/src/merkle.ts), auditors that re-run the sampled chunks and commit blind, tie-breakers.
 */
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { auditorCommitment, chunkLeaf, MerkleTree } from "../../sdk/src/merkle.js";
import { commitmentHash, unpackVerification, type JobStruct } from "../../sdk/src/params.js";
import type { System } from "./system.js";

/** The correct output of chunk i of a job: what an honest worker (or auditor) computes. */
export function honestLeaf(jobId: string, i: number): string {
  const enc = new TextEncoder();
  const leaf = chunkLeaf(jobId, i, enc.encode(`input ${jobId} ${i}`), enc.encode(`output ${jobId} ${i}`));
  return "0x" + Buffer.from(leaf).toString("hex");
}

/** A worker's result: the leaves it claims, its tree, and its commitment. */
export class Result {
  readonly tree: MerkleTree;
  readonly salt: string;
  constructor(
    readonly jobId: string,
    readonly provider: string,
    readonly leaves: string[],
  ) {
    this.tree = new MerkleTree(leaves);
    this.salt = "0x" + Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
  }

  /** Honest, or with the chunks in `fabricated` made up. */
  static of(jobId: string, provider: string, chunks: number, fabricated: Iterable<number> = []): Result {
    const fake = new Set(fabricated);
    const leaves = Array.from({ length: chunks }, (_, i) =>
      fake.has(i) ? "0x" + Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex") : honestLeaf(jobId, i),
    );
    return new Result(jobId, provider, leaves);
  }

  get commitment(): string {
    return commitmentHash(this.jobId, this.provider, this.tree.root, this.salt);
  }

  leavesAt(sample: number[]): string[] {
    return sample.map((i) => this.tree.leaf(i));
  }

  proofsAt(sample: number[]): string[][] {
    return sample.map((i) => this.tree.proof(i));
  }
}

/** An auditor's (or tie-breaker's) answer for some chunks, and the auditor's blind commitment. */
export class AuditAnswer {
  constructor(
    readonly jobId: string,
    readonly auditor: string,
    readonly leaves: string[],
  ) {}

  /** Re-runs `chunks` honestly, except those in `lieAt` (positions in the list). */
  static of(jobId: string, auditor: string, chunks: number[], lieAt: number[] = []): AuditAnswer {
    const leaves = chunks.map((c, k) =>
      lieAt.includes(k) ? "0x" + Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex") : honestLeaf(jobId, c),
    );
    return new AuditAnswer(jobId, auditor, leaves);
  }

  get commitment(): string {
    return auditorCommitment(this.jobId, this.auditor, this.leaves);
  }
}

/** Positions k of the sample where bit k of `mask` is set, and the chunks there. */
export function disputedChunks(sample: number[], mask: bigint): number[] {
  return sample.filter((_, k) => (mask >> BigInt(k)) & 1n);
}

/** The audit draw is known, the auditor re-runs the sample and claims + commits in one transaction. */
export async function claimAudit(sys: System, job: JobStruct, auditor: HardhatEthersSigner, lieAt: number[] = []) {
  const sample = (await sys.market.sampleOf(job)).map(Number);
  const jobId = await sys.market.hashJob(job);
  const answer = AuditAnswer.of(jobId, auditor.address, sample, lieAt);
  await sys.market.connect(auditor).audit(job, answer.commitment);
  return { sample, answer };
}

export function chunksOf(job: JobStruct): number {
  return unpackVerification(job.request.verification).chunks;
}
