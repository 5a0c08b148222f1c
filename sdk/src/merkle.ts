/**
 * The result commitment format of PROTOCOL.md §5, exactly as contracts/libraries/MerkleSha256.sol
 * checks it:
 *
 *   leaf_i = sha256(0x00 ‖ jobId ‖ uint32be(i) ‖ sha256(inputChunk_i) ‖ sha256(outputChunk_i))
 *   node   = sha256(0x01 ‖ left ‖ right)
 *
 * A tree of N leaves has depth ceil(log2 N); missing leaves on the right are 32 zero bytes, so every
 * proof has exactly depth(N) siblings and bit `level` of the index says on which side the node is.
 * Hashing uses Node's native SHA-256.
 */
import { createHash } from "node:crypto";
import { AbiCoder, getBytes, hexlify, keccak256 } from "ethers";

export type Bytes32 = Uint8Array;
const ZERO = new Uint8Array(32);
const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

export function sha256(...parts: Uint8Array[]): Bytes32 {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function bytes32(value: string | Uint8Array): Bytes32 {
  const b = typeof value === "string" ? getBytes(value) : value;
  if (b.length !== 32) throw new RangeError(`expected 32 bytes, got ${b.length}`);
  return b;
}

/** ceil(log2(chunks)): the number of siblings in every proof of a tree of `chunks` leaves. */
export function depth(chunks: number): number {
  if (!Number.isInteger(chunks) || chunks < 1) throw new RangeError(`a tree needs at least one chunk (got ${chunks})`);
  let d = 0;
  while (1 << d < chunks) d++;
  return d;
}

/** The leaf of chunk `index`, from the SHA-256 digests of its input and output bytes. */
export function leafHash(jobId: string, index: number, inputDigest: string | Uint8Array, outputDigest: string | Uint8Array): Bytes32 {
  const i = new Uint8Array(4);
  new DataView(i.buffer).setUint32(0, index, false);
  return sha256(LEAF_PREFIX, bytes32(jobId), i, bytes32(inputDigest), bytes32(outputDigest));
}

/** The leaf of chunk `index` from the chunks' bytes themselves. */
export function chunkLeaf(jobId: string, index: number, input: Uint8Array, output: Uint8Array): Bytes32 {
  return leafHash(jobId, index, sha256(input), sha256(output));
}

export function hashNode(left: Bytes32, right: Bytes32): Bytes32 {
  return sha256(NODE_PREFIX, left, right);
}

/** A result tree: build it from the leaves, read its root, prove any chunk. */
export class MerkleTree {
  /** levels[0] are the (padded) leaves, the last level is the root. */
  readonly #levels: Bytes32[][];
  readonly chunks: number;

  constructor(leaves: (Bytes32 | string)[]) {
    this.chunks = leaves.length;
    const d = depth(leaves.length);
    let level = leaves.map(bytes32);
    const width = 1 << d;
    while (level.length < width) level.push(ZERO);
    this.#levels = [level];
    for (let l = 0; l < d; l++) {
      const next: Bytes32[] = new Array(level.length / 2);
      for (let i = 0; i < next.length; i++) next[i] = hashNode(level[2 * i], level[2 * i + 1]);
      this.#levels.push(next);
      level = next;
    }
  }

  get root(): string {
    return hexlify(this.#levels[this.#levels.length - 1][0]);
  }

  leaf(index: number): string {
    this.#check(index);
    return hexlify(this.#levels[0][index]);
  }

  /** The siblings from the leaf up, as the contract takes them. */
  proof(index: number): string[] {
    this.#check(index);
    const siblings: string[] = [];
    for (let l = 0; l < this.#levels.length - 1; l++) siblings.push(hexlify(this.#levels[l][(index >> l) ^ 1]));
    return siblings;
  }

  #check(index: number) {
    if (!Number.isInteger(index) || index < 0 || index >= this.chunks) {
      throw new RangeError(`chunk ${index} is outside 0..${this.chunks - 1}`);
    }
  }
}

/** The off-chain twin of MerkleSha256.verify. */
export function verifyProof(root: string, chunks: number, index: number, leaf: string | Bytes32, proof: string[]): boolean {
  if (!Number.isInteger(index) || index < 0 || index >= chunks || proof.length !== depth(chunks)) return false;
  let node = bytes32(leaf);
  for (let l = 0; l < proof.length; l++) {
    const sibling = bytes32(proof[l]);
    node = (index >> l) & 1 ? hashNode(sibling, node) : hashNode(node, sibling);
  }
  return hexlify(node) === hexlify(bytes32(root));
}

const coder = AbiCoder.defaultAbiCoder();

/**
 * The chunk indices an audit re-executes: index k = keccak256(abi.encode(uint56 seed, k)) mod N,
 * with replacement; a chunk named by a challenger replaces the first. The market exposes the same list
 * through `sampleOf(job)`.
 */
export function sampleIndices(seed: bigint, chunks: number, auditChunks: number, named?: number): number[] {
  const sample: number[] = [];
  for (let k = 0; k < auditChunks; k++) {
    sample.push(Number(BigInt(keccak256(coder.encode(["uint56", "uint256"], [seed, k]))) % BigInt(chunks)));
  }
  if (named !== undefined) sample[0] = named;
  return sample;
}

/**
 * What an auditor commits to, blind, when it claims an audit: keccak256(abi.encode(jobId, auditor,
 * leaves)). The provider's revealed leaves open it when the audit matches.
 */
export function auditorCommitment(jobId: string, auditor: string, leaves: string[]): string {
  return keccak256(coder.encode(["bytes32", "address", "bytes32[]"], [jobId, auditor, leaves]));
}
