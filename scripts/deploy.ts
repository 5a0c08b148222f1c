/**
 * `npm run deploy -- --network <name>`: deploys Meshwork with Hardhat Ignition, hands every governed
 * contract to the timelock, renounces the deployer's powers, and writes deployments/<name>.json.
 *
 * - Local chains (chain id 31337: the in-process network, `hardhat node` as `localhost`) get the devnet
 *   module (test stablecoin included) with windows of minutes.
 * - Any other network gets the live module with the live defaults; it needs PAYMENT_TOKEN (the USD
 *   stablecoin to allowlist) and MESH_RECIPIENT (who receives the whole MESH supply, hence every vote:
 *   a multisig, vesting or distribution contract; the deployer's own address only if named), both
 *   checked before the first transaction, and optionally GUARDIAN (who may pause new jobs and claims for
 *   a bounded time, docs/governance.md; none by default). The network's RPC URL and deployer key come from Hardhat's keystore or
 *   environment variables (hardhat.config.ts).
 * - Before the address book is written, the hand-over is read back from the chain (scripts/lib/handover.ts).
 * - Re-running on the same network resumes or reuses Ignition's journal (ignition/deployments/<id>), so
 *   it deploys nothing twice; the address book is never replaced silently (see scripts/lib/addressBook.ts).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { getAddress, isAddress } from "ethers";
import { config, network } from "hardhat";
import MeshworkModule from "../ignition/modules/Meshwork.js";
import DevnetModule from "../ignition/modules/Devnet.js";
import { writeAddressBook, type AddressBook } from "./lib/addressBook.js";
import { handoverProblems } from "./lib/handover.js";
import { DEVNET_PARAMETERS } from "./lib/devnetParameters.js";

const connection = await network.connect();
const { ethers, ignition, networkName } = connection;
const chainId = Number((await ethers.provider.getNetwork()).chainId);
const local = chainId === 31337;
const genesis = await ethers.provider.getBlock(0);
// A local node is a new chain each time it starts: key its journal by its genesis block.
const deploymentId = local ? `devnet-${genesis!.hash!.slice(2, 10)}` : `${networkName}-${chainId}`;
const startBlock = await ethers.provider.getBlockNumber();

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name} to deploy on ${networkName}`);
  return value;
}

/** An address from the environment, checksummed; refused (before any transaction) unless it is one. */
function addressFrom(name: string, value: string): string {
  if (!isAddress(value) || BigInt(value) === 0n) throw new Error(`${name}=${value} is not a (non-zero) address`);
  return getAddress(value);
}

// The live inputs are checked before Ignition sends anything: a bad one found later would leave a
// half-built system, still the deployer's, and a journal Ignition refuses to resume with other values.
const live = local
  ? undefined
  : {
      paymentToken: addressFrom("PAYMENT_TOKEN", required("PAYMENT_TOKEN")),
      // Required: whoever holds the supply holds every vote, so nobody gets it by default.
      meshRecipient: addressFrom("MESH_RECIPIENT", required("MESH_RECIPIENT")),
      guardian: process.env.GUARDIAN ? addressFrom("GUARDIAN", process.env.GUARDIAN) : undefined,
    };
if (live) {
  if ((await ethers.provider.getCode(live.paymentToken)) === "0x") {
    throw new Error(`PAYMENT_TOKEN ${live.paymentToken} has no code on ${networkName} (chain ${chainId}): not a token there`);
  }
  const token = await ethers.getContractAt(["function decimals() view returns (uint8)", "function symbol() view returns (string)"], live.paymentToken);
  const described = await Promise.all([token.symbol(), token.decimals()]).then(
    ([symbol, decimals]) => `${symbol}, ${decimals} decimals`,
    () => undefined,
  );
  if (described === undefined) throw new Error(`PAYMENT_TOKEN ${live.paymentToken} does not answer symbol() and decimals(): not an ERC20`);
  const deployer = (await ethers.getSigners())[0].address;
  console.log(`Payment token: ${live.paymentToken} (${described})`);
  const who = live.meshRecipient === deployer ? `${live.meshRecipient} (the deployer)` : live.meshRecipient;
  console.log(`The whole MESH supply (every vote) goes to ${who}`);
  console.log(`Guardian: ${live.guardian ?? "none (set GUARDIAN to name one; the DAO can set one later)"}`);
}

console.log(`Deploying Meshwork to ${networkName} (chain ${chainId}) as ${deploymentId}...`);
const deployed = !live
  ? await ignition.deploy(DevnetModule, { parameters: { MeshworkDevnet: DEVNET_PARAMETERS }, deploymentId, displayUi: false })
  : await ignition.deploy(MeshworkModule, {
      parameters: {
        Meshwork: {
          paymentToken: live.paymentToken,
          meshRecipient: live.meshRecipient,
          ...(live.guardian ? { guardian: live.guardian } : {}),
        },
      },
      deploymentId,
      displayUi: false,
    });

const address = async (c: { getAddress(): Promise<string> }) => c.getAddress();
const contracts = {
  mesh: await address(deployed.mesh),
  registry: await address(deployed.registry),
  market: await address(deployed.core),
  auditModule: await address(deployed.auditModule),
  timelock: await address(deployed.timelock),
  governor: await address(deployed.governor),
  commons: await address(deployed.commons),
  paymentTokens: {
    ...("usd" in deployed ? { tUSD: await address(deployed.usd as { getAddress(): Promise<string> }) } : {}),
    ...(!live ? { MESH: await address(deployed.mesh) } : { USD: live.paymentToken }),
  },
};

/**
 * The block each contract was created in, from the receipts Ignition's journal recorded when it confirmed
 * the deployments (this run's or an earlier run's): reading code at past blocks would need an archive
 * node, which most public RPCs are not. The in-process network keeps no journal, and all its state: there
 * the first block where the contract has code is searched for.
 */
function journalCreationBlocks(): Map<string, number> {
  const path = join(config.paths.ignition, "deployments", deploymentId, "journal.jsonl");
  const found = new Map<string, number>();
  if (connection.networkConfig.type === "edr-simulated" || !existsSync(path)) return found;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const entry = JSON.parse(line) as { type?: string; receipt?: { contractAddress?: string | null; blockNumber?: number } };
    const created = entry.type === "TRANSACTION_CONFIRM" ? entry.receipt?.contractAddress : undefined;
    if (created && entry.receipt?.blockNumber !== undefined) found.set(created.toLowerCase(), entry.receipt.blockNumber);
  }
  return found;
}
async function searchCreationBlock(target: string, from: number, to: number): Promise<number> {
  while (from < to) {
    const mid = Math.floor((from + to) / 2);
    if ((await ethers.provider.getCode(target, mid)) === "0x") from = mid + 1;
    else to = mid;
  }
  return from;
}
const endBlock = await ethers.provider.getBlockNumber();
const journalBlocks = journalCreationBlocks();
const blocks: Record<string, number> = {};
for (const [name, value] of Object.entries(contracts)) {
  if (typeof value !== "string") continue;
  const recorded = journalBlocks.get(value.toLowerCase());
  if (recorded !== undefined) blocks[name] = recorded;
  else if (connection.networkConfig.type === "edr-simulated") blocks[name] = await searchCreationBlock(value, 0, endBlock);
  else throw new Error(`Ignition's journal (ignition/deployments/${deploymentId}) has no receipt creating ${name} (${value})`);
}

// Parameters as the chain reports them, so the address book never disagrees with the contracts.
const market = await ethers.getContractAt("IJobMarket", contracts.market);
const registry = await ethers.getContractAt("ProviderRegistry", contracts.registry);
const governor = await ethers.getContractAt("MeshGovernor", contracts.governor);
const timelock = await ethers.getContractAt("MeshTimelock", contracts.timelock);
const parameterNames = [
  "feeBps", "collateralBps", "timeoutSlashBps", "challengeWindow", "revealWindow", "pMinBps", "probationJobs",
  "auditPoolShareBps", "auditRewardBps", "auditCollateralBps", "minComputeWindow", "maxComputeWindow",
  "fraudStakeSlashBps", "fraudConsumerBps", "fraudAuditorBps", "challengeBondBps", "assumedCollusionBps",
  "auditClaimWindow", "auditRevealWindow", "escalationWindow", "maxPauseDuration",
];
const parameters: Record<string, string | number> = {};
for (const [i, name] of parameterNames.entries()) parameters[`market.${name}`] = Number(await market.parameter(i));
for (const [i, name] of ["minStake", "unbondingPeriod", "jailPeriod"].entries()) {
  parameters[`registry.${name}`] = (await registry.parameter(i)).toString();
}
parameters["governor.votingDelay"] = Number(await governor.votingDelay());
parameters["governor.votingPeriod"] = Number(await governor.votingPeriod());
parameters["governor.quorumPercent"] = Number(await governor["quorumNumerator()"]());
parameters["governor.proposalThreshold"] = (await governor.proposalThreshold()).toString();
parameters["governor.lateQuorumExtension"] = Number(await governor.lateQuorumVoteExtension());
parameters["timelock.minDelay"] = Number(await timelock.getMinDelay());

// The hand-over as the chain reports it: no address book for a system someone still controls.
const deployerAddress = (await ethers.getSigners())[0].address;
const problems = await handoverProblems(ethers.provider, contracts, deployerAddress);
if (problems.length) {
  throw new Error(`the hand-over to the timelock is incomplete, no address book written:\n- ${problems.join("\n- ")}`);
}
console.log("Hand-over checked: the timelock owns every governed contract; the deployer holds no role");

const book: AddressBook = {
  network: networkName,
  chainId,
  deploymentBlock: Math.min(startBlock, ...Object.values(blocks)),
  blocks,
  contracts,
  parameters,
  ignitionDeploymentId: deploymentId,
  deployedAt: new Date().toISOString(),
};
const outcome = writeAddressBook(book);
console.log(`Address book ${outcome}: deployments/${networkName}.json`);
console.log(JSON.stringify(contracts, null, 2));
