/**
 * Hardhat Ignition modules for the whole Meshwork system.
 *
 * `buildMeshwork` deploys MESH, the registry, the market (core + audit module), the timelock, the
 * governor and the compute commons; wires them (registry -> market, market -> commons, allowlisted
 * payment tokens); then hands every governed contract to the timelock and renounces the deployer's
 * powers: the timelock is its own admin, the governor its only proposer and canceller, anyone may
 * execute a queued proposal. After the deployment nobody but a passed proposal can change anything.
 *
 * Two modules use it: `Meshwork` for a live chain (one payment token given as a parameter) and
 * `MeshworkDevnet` (ignition/modules/Devnet.ts), which also deploys the 6-decimal test stablecoin.
 * Every number is a parameter with a live-chain default; scripts/deploy.ts passes devnet values.
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import type { ContractFuture, IgnitionModuleBuilder, ModuleParameterRuntimeValue } from "@nomicfoundation/ignition-core";
import { id as ethersId } from "ethers";

type Builder = IgnitionModuleBuilder;
/** A payment token to allowlist: a contract deployed in the module, or an address parameter. */
type Token = ContractFuture<string> | ModuleParameterRuntimeValue<string>;

const DAY = 24 * 3600;
const PROPOSER_ROLE = ethersId("PROPOSER_ROLE");
const CANCELLER_ROLE = ethersId("CANCELLER_ROLE");
const DEFAULT_ADMIN_ROLE = "0x" + "00".repeat(32);

export function buildMeshwork(m: Builder, paymentTokens: Token[], options: { allowMesh?: boolean } = {}) {
  const deployer = m.getAccount(0);

  const mesh = m.contract("MeshToken", [m.getParameter("meshRecipient", deployer), m.getParameter("meshSupply", 10n ** 27n)]);
  const registry = m.contract("ProviderRegistry", [
    mesh,
    deployer,
    m.getParameter("minStake", 1_000n * 10n ** 18n),
    // Longer than a job can take from claim to final verdict (docs/governance.md): stake cannot leave
    // before it can be slashed.
    m.getParameter("unbondingPeriod", 30 * DAY),
    m.getParameter("jailPeriod", 30 * DAY),
  ]);
  const auditModule = m.contract("AuditModule", [registry]);
  const core = m.contract("JobMarket", [
    registry,
    auditModule,
    deployer,
    {
      feeBps: m.getParameter("feeBps", 250),
      collateralBps: m.getParameter("collateralBps", 20_000),
      timeoutSlashBps: m.getParameter("timeoutSlashBps", 2_000),
      challengeWindow: m.getParameter("challengeWindow", DAY),
      revealWindow: m.getParameter("revealWindow", DAY),
      pMinBps: m.getParameter("pMinBps", 5_000),
      probationJobs: m.getParameter("probationJobs", 3),
      auditRewardBps: m.getParameter("auditRewardBps", 200),
      auditCollateralBps: m.getParameter("auditCollateralBps", 10_000),
      auditClaimWindow: m.getParameter("auditClaimWindow", DAY),
      auditRevealWindow: m.getParameter("auditRevealWindow", DAY),
      minComputeWindow: m.getParameter("minComputeWindow", 600),
      maxComputeWindow: m.getParameter("maxComputeWindow", 7 * DAY),
      flags: 0,
    },
    {
      fraudStakeSlashBps: m.getParameter("fraudStakeSlashBps", 1_000),
      fraudConsumerBps: m.getParameter("fraudConsumerBps", 3_000),
      fraudAuditorBps: m.getParameter("fraudAuditorBps", 5_000),
      challengeBondBps: m.getParameter("challengeBondBps", 1_000),
      assumedCollusionBps: m.getParameter("assumedCollusionBps", 3_333),
      escalationWindow: m.getParameter("escalationWindow", 14 * DAY),
      auditPoolShareBps: m.getParameter("auditPoolShareBps", 4_000),
    },
  ]);
  // The market's whole ABI (core + audit module) at its one address.
  const market = m.contractAt("IJobMarket", core, { id: "Market" });
  const setMarket = m.call(registry, "setMarket", [core]);

  const timelock = m.contract("MeshTimelock", [
    m.getParameter("timelockDelay", 2 * DAY),
    [],
    ["0x0000000000000000000000000000000000000000"], // anyone may execute a queued proposal
    deployer, // temporary admin, renounced below
  ]);
  const governor = m.contract("MeshGovernor", [
    mesh,
    registry,
    timelock,
    m.getParameter("votingDelay", DAY),
    m.getParameter("votingPeriod", 7 * DAY),
    m.getParameter("proposalThreshold", 100_000n * 10n ** 18n),
    m.getParameter("quorumPercent", 4),
    m.getParameter("lateQuorumExtension", DAY),
  ]);
  const commons = m.contract("ComputeCommons", [market, timelock]);

  const setCommons = m.call(market, "setCommons", [commons]);
  // The optional guardian (zero address: none); the DAO can set or remove it later.
  const setGuardian = m.call(market, "setGuardian", [m.getParameter("guardian", "0x0000000000000000000000000000000000000000")]);
  const tokens: (Token | typeof mesh)[] = options.allowMesh ? [...paymentTokens, mesh] : paymentTokens;
  const allowlisted = tokens.map((token, i) => m.call(market, "setPaymentToken", [token, true], { id: `allowToken${i}` }));
  const proposer = m.call(timelock, "grantRole", [PROPOSER_ROLE, governor], { id: "grantProposer" });
  const canceller = m.call(timelock, "grantRole", [CANCELLER_ROLE, governor], { id: "grantCanceller" });

  // Hand over: the timelock owns the registry and the market (the commons already), the deployer keeps nothing.
  const registryOwned = m.call(registry, "transferOwnership", [timelock], { id: "registryToTimelock", after: [setMarket] });
  const marketOwned = m.call(core, "transferOwnership", [timelock], {
    id: "marketToTimelock",
    after: [setCommons, setGuardian, ...allowlisted],
  });
  // The audit module runs only by delegatecall on the market's storage, so its own owner governs nothing;
  // renounced all the same, so that no deployed contract names the deployer.
  m.call(auditModule, "renounceOwnership", [], { id: "renounceAuditModuleOwner" });
  m.call(timelock, "renounceRole", [DEFAULT_ADMIN_ROLE, deployer], {
    id: "renounceTimelockAdmin",
    after: [proposer, canceller, registryOwned, marketOwned],
  });

  return { mesh, registry, auditModule, core, market, timelock, governor, commons };
}

/** A live chain: one payment token (a USD stablecoin) given as the `paymentToken` parameter. */
export default buildModule("Meshwork", (m) => {
  const token = m.getParameter<string>("paymentToken");
  return buildMeshwork(m, [token]);
});
