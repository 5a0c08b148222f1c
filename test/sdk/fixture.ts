/**
 * The SDK tests' shared fixture: the devnet deployment (Ignition, owned by the timelock), an address
 * book for it, an in-memory blob store, and SDK clients for a consumer, providers and an auditor.
 * Providers onboard through the SDK itself. `work()` plays an honest (or lying) worker through the
 * audited path every newcomer takes (probation).
 */
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { NetworkConnection } from "hardhat/types/network";
import { randomBytes } from "node:crypto";
import { hexlify } from "ethers";
import { MemoryBlobStore } from "../../sdk/src/blob.js";
import { Meshwork } from "../../sdk/src/client.js";
import type { AddressBook } from "../../sdk/src/addressBook.js";
import { Energy, Runtime, type Profile } from "../../sdk/src/providers.js";
import { auditorCommitment } from "../../sdk/src/merkle.js";
import { publishResult } from "../../sdk/src/results.js";
import { digestOf } from "../../sdk/src/blob.js";
import type { JobHandle } from "../../sdk/src/jobs.js";
import type { JobSpecInput } from "../../sdk/src/spec.js";
import { deployDao, type Dao } from "../helpers/dao.js";

export const USD = 10n ** 6n;
export const MESH = 10n ** 18n;
export const CHUNKS = 4;

export const PROFILE: Profile = {
  gpuCount: 1,
  vramGB: 24,
  gpuClass: 3,
  region: "DE",
  energy: Energy.Renewable,
  runtimes: [Runtime.IntKernels, Runtime.Onnx],
};

export interface SdkWorld extends Dao {
  book: AddressBook;
  store: MemoryBlobStore;
  consumer: HardhatEthersSigner;
  /** Providers: cheap (1 tUSD/unit, DE, renewable), mid (2, KE, grid), dear (3, DE, renewable). */
  cheap: HardhatEthersSigner;
  mid: HardhatEthersSigner;
  dear: HardhatEthersSigner;
  auditor: HardhatEthersSigner;
  outsider: HardhatEthersSigner;
  sdk: (signer: HardhatEthersSigner) => Promise<Meshwork>;
  inputs: Uint8Array[];
}

export async function bookOf(dao: Dao): Promise<AddressBook> {
  const network = await dao.ethers.provider.getNetwork();
  return {
    network: "hardhat",
    chainId: Number(network.chainId),
    deploymentBlock: 0,
    blocks: {},
    contracts: {
      mesh: await dao.mesh.getAddress(),
      registry: await dao.registry.getAddress(),
      market: await dao.market.getAddress(),
      auditModule: await dao.market.auditModule(),
      timelock: await dao.timelock.getAddress(),
      governor: await dao.governor.getAddress(),
      commons: await dao.commons.getAddress(),
      paymentTokens: { tUSD: await dao.usd.getAddress(), MESH: await dao.mesh.getAddress() },
    },
    parameters: {},
  };
}

/** A job spec over `inputs` (one blob per chunk), integer kernel, exact bytes. */
export function specOver(inputs: Uint8Array[]): JobSpecInput {
  return {
    version: 1,
    runtime: "int-kernel",
    program: { digest: digestOf(new TextEncoder().encode("double every byte")), size: 17 },
    inputs: { kind: "chunks", chunks: inputs.map((b) => ({ digest: digestOf(b), size: b.length })) },
    chunking: { chunks: inputs.length },
    output: { encoding: "bytes", canonicalisation: "exact" },
  };
}

/** What the test program computes: every byte doubled (mod 256). */
export function compute(input: Uint8Array): Uint8Array {
  return input.map((b) => (b * 2) & 0xff);
}

export async function sdkWorld(connection: NetworkConnection): Promise<SdkWorld> {
  const dao = await deployDao(connection);
  const { ethers } = connection;
  const [, consumer, cheap, mid, dear, auditor, outsider] = await ethers.getSigners();
  const book = await bookOf(dao);
  const store = new MemoryBlobStore();
  const sdk = (signer: HardhatEthersSigner) => Meshwork.connect({ runner: signer, addresses: book, blobStore: store });
  const prices: [HardhatEthersSigner, bigint, Partial<Profile>][] = [
    [cheap, 1n * USD, {}],
    [mid, 2n * USD, { region: "KE", energy: Energy.Grid }],
    [dear, 3n * USD, {}],
    [auditor, 1n * USD, {}],
  ];
  for (const [signer, price, profile] of prices) {
    await dao.mesh.connect(dao.deployer).transfer(signer.address, 1_000n * MESH);
    const mw = await sdk(signer);
    await mw.providers.register({ ...PROFILE, ...profile }, "ipfs://meta");
    await mw.providers.stake(1_000n * MESH);
    await mw.providers.postPrice("tUSD", price);
    await dao.usd.mint(signer.address, 100_000n * USD);
    await mw.balances.deposit("tUSD", 100_000n * USD);
  }
  await dao.usd.mint(consumer.address, 100_000n * USD);
  const inputs = Array.from({ length: CHUNKS }, () => new Uint8Array(randomBytes(1024)));
  for (const input of inputs) await store.put(input);
  return { ...dao, book, store, consumer, cheap, mid, dear, auditor, outsider, sdk, inputs };
}

/**
 * Plays the worker for `handle`'s job: claim (unless `claimed`), compute, publish, commit, let the
 * auditor commit to the sampled leaves, reveal. `tamper` replaces the stored bytes of that output chunk
 * after the reveal (a blob store that lies).
 */
export async function work(
  w: SdkWorld,
  handle: JobHandle,
  provider: HardhatEthersSigner,
  options: { claimed?: boolean } = {},
): Promise<{ root: string; outputURI: string }> {
  const { market } = w;
  const job = handle.job;
  if (!options.claimed) await market.connect(provider).claim(job);
  const outputs = w.inputs.map(compute);
  const { root, outputURI, tree } = await publishResult(w.store, handle.jobId, w.inputs, outputs);
  const salt = hexlify(randomBytes(32));
  await market.connect(provider).commit(handle.jobId, await market.commitmentHash(handle.jobId, provider.address, root, salt));
  await w.networkHelpers.mine(2);
  const sample = (await market.sampleOf(job)).map(Number);
  const leaves = sample.map((i) => tree.leaf(i));
  await market.connect(w.auditor).audit(job, auditorCommitment(handle.jobId, w.auditor.address, leaves));
  await market
    .connect(provider)
    .revealResult(job, provider.address, root, salt, outputURI, leaves, sample.map((i) => tree.proof(i)));
  return { root, outputURI };
}
