/**
 * Differential test of the result tree: the SDK's TypeScript implementation (sdk/src/merkle.ts) builds
 * roots and proofs; the contract's MerkleSha256 (through the market's `verifyChunk`) must accept every
 * genuine proof and reject tampered leaves, indices and siblings, for 1 to 4,096 chunks.
 */
import { expect } from "chai";
import { network } from "hardhat";
import { MerkleTree, chunkLeaf, depth, leafHash, sha256, verifyProof } from "../../sdk/src/merkle.js";
import { deploySystem } from "../helpers/system.js";

const { ethers, networkHelpers } = await network.create();

/** Deterministic pseudo-random generator, so a failure can be replayed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const hex = (b: Uint8Array) => "0x" + Buffer.from(b).toString("hex");

describe("result Merkle tree: SDK vs contract", () => {
  const fixture = () => deploySystem(ethers);
  const edge = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1023, 1024, 1025, 2047, 2049, 4095, 4096];
  const random = rng(0x5eed);
  const sizes = [...edge, ...Array.from({ length: 12 }, () => 1 + Math.floor(random() * 4096))];

  it("computes leaves as sha256(0x00 ‖ jobId ‖ uint32be(i) ‖ sha256(input) ‖ sha256(output))", () => {
    const jobId = ethers.keccak256("0x01");
    const input = new TextEncoder().encode("in");
    const output = new TextEncoder().encode("out");
    const manual = sha256(
      new Uint8Array([0]),
      ethers.getBytes(jobId),
      new Uint8Array([0, 0, 1, 2]),
      sha256(input),
      sha256(output),
    );
    expect(hex(chunkLeaf(jobId, 258, input, output))).to.equal(hex(manual));
    expect(hex(leafHash(jobId, 258, sha256(input), sha256(output)))).to.equal(hex(manual));
  });

  for (const n of sizes) {
    it(`accepts genuine proofs and rejects tampered ones for ${n} chunk${n === 1 ? "" : "s"}`, async () => {
      const { market } = await networkHelpers.loadFixture(fixture);
      const r = rng(n);
      const jobId = ethers.hexlify(ethers.randomBytes(32));
      const leaves = Array.from({ length: n }, (_, i) => leafHash(jobId, i, sha256(new Uint8Array([i & 0xff, r() * 255])), sha256(new Uint8Array([7, i >> 8]))));
      const tree = new MerkleTree(leaves);
      const picks = new Set([0, n - 1, Math.floor(r() * n), Math.floor(r() * n)]);
      for (const i of picks) {
        const proof = tree.proof(i);
        expect(proof.length).to.equal(depth(n));
        const leaf = tree.leaf(i);
        expect(verifyProof(tree.root, n, i, leaf, proof)).to.equal(true);
        expect(await market.verifyChunk(tree.root, n, i, leaf, proof)).to.equal(true);

        // A tampered leaf, another index, a tampered sibling, a short or long proof: all rejected.
        const badLeaf = ethers.hexlify(ethers.randomBytes(32));
        expect(await market.verifyChunk(tree.root, n, i, badLeaf, proof)).to.equal(false);
        if (n > 1) {
          const other = (i + 1) % n;
          expect(await market.verifyChunk(tree.root, n, other, leaf, proof)).to.equal(false);
          const badSibling = [...proof];
          const level = Math.floor(r() * proof.length);
          badSibling[level] = ethers.hexlify(ethers.randomBytes(32));
          expect(await market.verifyChunk(tree.root, n, i, leaf, badSibling)).to.equal(false);
          expect(verifyProof(tree.root, n, i, leaf, badSibling)).to.equal(false);
          expect(await market.verifyChunk(tree.root, n, i, leaf, proof.slice(1))).to.equal(false);
        }
        expect(await market.verifyChunk(tree.root, n, i, leaf, [...proof, ethers.ZeroHash])).to.equal(false);
        expect(await market.verifyChunk(tree.root, n, n, leaf, proof)).to.equal(false); // index out of range
      }
    });
  }

  it("refuses to build or prove outside the tree", () => {
    expect(() => new MerkleTree([])).to.throw(RangeError);
    const tree = new MerkleTree([ethers.ZeroHash, ethers.ZeroHash, ethers.ZeroHash]);
    expect(() => tree.proof(3)).to.throw(RangeError);
    expect(verifyProof(tree.root, 3, 0, ethers.ZeroHash, tree.proof(0))).to.equal(true);
  });
});
