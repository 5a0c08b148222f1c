/**
 * The deployment's last check, read from the chain before the address book is written: every governed
 * contract is the timelock's, the governor is wired to MESH, the registry and the timelock, and the
 * deployer holds no power. The Ignition module does all of this; the check is what an auditor would run,
 * so a module changed later, or a deployment finished by hand, cannot publish an address book for a
 * system someone still controls.
 */
import { Contract, ZeroAddress, type ContractRunner } from "ethers";

export interface HandoverContracts {
  mesh: string;
  registry: string;
  market: string;
  timelock: string;
  governor: string;
  commons: string;
}

const OWNABLE = ["function owner() view returns (address)"];
const REGISTRY = [...OWNABLE, "function market() view returns (address)"];
const TIMELOCK = [
  "function hasRole(bytes32 role, address account) view returns (bool)",
  "function PROPOSER_ROLE() view returns (bytes32)",
  "function CANCELLER_ROLE() view returns (bytes32)",
  "function EXECUTOR_ROLE() view returns (bytes32)",
  "function DEFAULT_ADMIN_ROLE() view returns (bytes32)",
];
const GOVERNOR = [
  "function token() view returns (address)",
  "function timelock() view returns (address)",
  "function stakeRegistry() view returns (address)",
];

/** What is wrong with the hand-over, one line each; empty when the timelock owns everything. */
export async function handoverProblems(runner: ContractRunner, c: HandoverContracts, deployer: string): Promise<string[]> {
  const problems: string[] = [];
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  const expect = (what: string, actual: string, wanted: string, name: string) => {
    if (!same(actual, wanted)) problems.push(`${what} is ${actual}, not ${name} (${wanted})`);
  };

  const registry = new Contract(c.registry, REGISTRY, runner);
  for (const [name, address] of [["registry", c.registry], ["market", c.market], ["commons", c.commons]] as const) {
    expect(`the ${name}'s owner`, await new Contract(address, OWNABLE, runner).owner(), c.timelock, "the timelock");
  }
  expect("the registry's market", await registry.market(), c.market, "the market");

  const governor = new Contract(c.governor, GOVERNOR, runner);
  expect("the governor's token", await governor.token(), c.mesh, "MESH");
  expect("the governor's timelock", await governor.timelock(), c.timelock, "the timelock");
  expect("the governor's stake registry", await governor.stakeRegistry(), c.registry, "the registry");

  const timelock = new Contract(c.timelock, TIMELOCK, runner);
  const [proposer, canceller, executor, admin] = await Promise.all([
    timelock.PROPOSER_ROLE(),
    timelock.CANCELLER_ROLE(),
    timelock.EXECUTOR_ROLE(),
    timelock.DEFAULT_ADMIN_ROLE(),
  ]);
  const roles = { proposer, canceller, admin } as Record<string, string>;
  for (const [name, role] of Object.entries(roles)) {
    if (name !== "admin" && !(await timelock.hasRole(role, c.governor))) problems.push(`the governor is not the timelock's ${name}`);
    if (await timelock.hasRole(role, deployer)) problems.push(`the deployer ${deployer} is still the timelock's ${name}`);
  }
  if (!(await timelock.hasRole(admin, c.timelock))) problems.push("the timelock is not its own admin");
  if (!(await timelock.hasRole(executor, ZeroAddress))) problems.push("the timelock's executor role is not open to anyone");
  return problems;
}
