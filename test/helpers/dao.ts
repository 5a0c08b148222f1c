/**
 * The deployed system as `npm run deploy` builds it (ignition/modules/Devnet.ts with the devnet
 * parameters): every governed contract owned by the timelock, the governor its only proposer. Governance,
 * guardian and commons tests use it, so they test the real wiring rather than a test-only setup.
 */
import type { HardhatEthers, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { NetworkConnection } from "hardhat/types/network";
import DevnetModule from "../../ignition/modules/Devnet.js";
import { DEVNET_PARAMETERS } from "../../scripts/lib/devnetParameters.js";
import type {
  ComputeCommons,
  IJobMarket,
  MeshGovernor,
  MeshTimelock,
  MeshToken,
  ProviderRegistry,
  TestUSD,
} from "../../types/ethers-contracts/index.js";

export { DEVNET_PARAMETERS };

/** Governor.ProposalState */
export enum ProposalState {
  Pending,
  Active,
  Canceled,
  Defeated,
  Succeeded,
  Queued,
  Expired,
  Executed,
}

/** GovernorCountingSimple.VoteType */
export enum Vote {
  Against,
  For,
  Abstain,
}

export interface Dao {
  ethers: HardhatEthers;
  networkHelpers: NetworkConnection["networkHelpers"];
  deployer: HardhatEthersSigner;
  mesh: MeshToken;
  registry: ProviderRegistry;
  market: IJobMarket;
  timelock: MeshTimelock;
  governor: MeshGovernor;
  commons: ComputeCommons;
  usd: TestUSD;
}

/** Deploys the devnet system with Hardhat Ignition on `connection` (the deployer holds all MESH). */
export async function deployDao(connection: NetworkConnection): Promise<Dao> {
  const { ethers, ignition, networkHelpers } = connection;
  const deployed = await ignition.deploy(DevnetModule, {
    parameters: { MeshworkDevnet: DEVNET_PARAMETERS },
    displayUi: false,
  });
  const at = async <T>(name: string, c: { getAddress(): Promise<string> }) =>
    (await ethers.getContractAt(name, await c.getAddress())) as unknown as T;
  const [deployer] = await ethers.getSigners();
  return {
    ethers,
    networkHelpers,
    deployer,
    mesh: await at<MeshToken>("MeshToken", deployed.mesh),
    registry: await at<ProviderRegistry>("ProviderRegistry", deployed.registry),
    market: await at<IJobMarket>("IJobMarket", deployed.core),
    timelock: await at<MeshTimelock>("MeshTimelock", deployed.timelock),
    governor: await at<MeshGovernor>("MeshGovernor", deployed.governor),
    commons: await at<ComputeCommons>("ComputeCommons", deployed.commons),
    usd: await at<TestUSD>("TestUSD", deployed.usd),
  };
}

/** One call of a proposal. */
export interface Action {
  target: { getAddress(): Promise<string> } | string;
  /** Encoded calldata, e.g. `market.interface.encodeFunctionData("setParameter", [0, 300])`. */
  data: string;
  value?: bigint;
}

export async function proposalArgs(actions: Action[], description: string) {
  const targets = await Promise.all(actions.map((a) => (typeof a.target === "string" ? a.target : a.target.getAddress())));
  const values = actions.map((a) => a.value ?? 0n);
  const calldatas = actions.map((a) => a.data);
  return { targets, values, calldatas, description };
}

/**
 * Takes `actions` through the whole Governor lifecycle with `voter` (who must hold enough MESH to meet
 * quorum; it delegates to itself): propose, wait the voting delay, vote for, wait out the vote, queue in
 * the timelock, wait its delay, execute. Returns the proposal id.
 */
export async function passProposal(dao: Dao, voter: HardhatEthersSigner, actions: Action[], description: string): Promise<bigint> {
  const { governor, networkHelpers } = dao;
  if ((await dao.mesh.delegates(voter.address)) !== voter.address) await dao.mesh.connect(voter).delegate(voter.address);
  const { targets, values, calldatas } = await proposalArgs(actions, description);
  await governor.connect(voter).propose(targets, values, calldatas, description);
  const descriptionHash = dao.ethers.id(description);
  const id = await governor.hashProposal(targets, values, calldatas, descriptionHash);
  await networkHelpers.time.increaseTo((await governor.proposalSnapshot(id)) + 1n);
  await governor.connect(voter).castVote(id, Vote.For);
  await networkHelpers.time.increaseTo((await governor.proposalDeadline(id)) + 1n);
  await governor.queue(targets, values, calldatas, descriptionHash);
  await networkHelpers.time.increaseTo(await governor.proposalEta(id));
  await governor.execute(targets, values, calldatas, descriptionHash);
  return id;
}

/** A deployed contract as a signer (impersonated, given gas money), to call what only it may call. */
export async function contractSigner(dao: Dao, contract: { getAddress(): Promise<string> }): Promise<HardhatEthersSigner> {
  const address = await contract.getAddress();
  await dao.networkHelpers.impersonateAccount(address);
  await dao.networkHelpers.setBalance(address, 10n ** 20n);
  return dao.ethers.getSigner(address);
}

/** The timelock as a signer (impersonated), for tests of what only governance may do. */
export async function timelockSigner(dao: Dao): Promise<HardhatEthersSigner> {
  return contractSigner(dao, dao.timelock);
}
