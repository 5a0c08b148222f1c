/**
 * The deployment's last check, read from the chain before the address book is written: every governed
 * contract is the timelock's, the governor is wired to MESH, the registry and the timelock, and the
 * deployer holds no power. The Ignition module does all of this; the check is what an auditor would run,
 * so a module changed later, or a deployment finished by hand, cannot publish an address book for a
 * system someone still controls.
 */
import { ZeroAddress, type ContractRunner } from "ethers";
import { ComputeCommons__factory } from "../../types/ethers-contracts/factories/commons/ComputeCommons__factory.js";
import { MeshGovernor__factory } from "../../types/ethers-contracts/factories/governance/MeshGovernor__factory.js";
import { MeshTimelock__factory } from "../../types/ethers-contracts/factories/governance/MeshTimelock__factory.js";
import { JobMarket__factory } from "../../types/ethers-contracts/factories/market/JobMarket__factory.js";
import { ProviderRegistry__factory } from "../../types/ethers-contracts/factories/staking/ProviderRegistry__factory.js";

export interface HandoverContracts {
  mesh: string;
  registry: string;
  market: string;
  timelock: string;
  governor: string;
  commons: string;
}

/** What is wrong with the hand-over, one line each; empty when the timelock owns everything. */
export async function handoverProblems(runner: ContractRunner, c: HandoverContracts, deployer: string): Promise<string[]> {
  const problems: string[] = [];
  const expect = (what: string, actual: string, wanted: string, name: string) => {
    if (actual.toLowerCase() !== wanted.toLowerCase()) problems.push(`${what} is ${actual}, not ${name} (${wanted})`);
  };

  const registry = ProviderRegistry__factory.connect(c.registry, runner);
  const owners = [
    ["registry", registry],
    ["market", JobMarket__factory.connect(c.market, runner)],
    ["commons", ComputeCommons__factory.connect(c.commons, runner)],
  ] as const;
  for (const [name, contract] of owners) expect(`the ${name}'s owner`, await contract.owner(), c.timelock, "the timelock");
  expect("the registry's market", await registry.market(), c.market, "the market");

  const governor = MeshGovernor__factory.connect(c.governor, runner);
  expect("the governor's token", await governor.token(), c.mesh, "MESH");
  expect("the governor's timelock", await governor.timelock(), c.timelock, "the timelock");
  expect("the governor's stake registry", await governor.stakeRegistry(), c.registry, "the registry");

  const timelock = MeshTimelock__factory.connect(c.timelock, runner);
  const [proposer, canceller, executor, admin] = await Promise.all([
    timelock.PROPOSER_ROLE(),
    timelock.CANCELLER_ROLE(),
    timelock.EXECUTOR_ROLE(),
    timelock.DEFAULT_ADMIN_ROLE(),
  ]);
  for (const [name, role] of [["proposer", proposer], ["canceller", canceller]] as const) {
    if (!(await timelock.hasRole(role, c.governor))) problems.push(`the governor is not the timelock's ${name}`);
  }
  for (const [name, role] of [["proposer", proposer], ["canceller", canceller], ["admin", admin]] as const) {
    if (await timelock.hasRole(role, deployer)) problems.push(`the deployer ${deployer} is still the timelock's ${name}`);
  }
  if (!(await timelock.hasRole(admin, c.timelock))) problems.push("the timelock is not its own admin");
  if (!(await timelock.hasRole(executor, ZeroAddress))) problems.push("the timelock's executor role is not open to anyone");
  return problems;
}
