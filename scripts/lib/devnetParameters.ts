/**
 * Parameters of the devnet deployment (ignition/modules/Devnet.ts): the live protocol's numbers, with
 * every window and delay in minutes so that a job, an audit and a whole governance round fit in a demo.
 */
const MINUTE = 60;

export const DEVNET_PARAMETERS = {
  meshSupply: 1_000_000_000n * 10n ** 18n,
  minStake: 1_000n * 10n ** 18n,
  unbondingPeriod: 10 * MINUTE,
  jailPeriod: 10 * MINUTE,
  challengeWindow: 2 * MINUTE,
  revealWindow: 5 * MINUTE,
  auditClaimWindow: 2 * MINUTE,
  auditRevealWindow: 2 * MINUTE,
  minComputeWindow: MINUTE,
  maxComputeWindow: 60 * MINUTE,
  escalationWindow: 60 * MINUTE,
  timelockDelay: 2 * MINUTE,
  votingDelay: MINUTE,
  votingPeriod: 5 * MINUTE,
  lateQuorumExtension: MINUTE,
  proposalThreshold: 0n,
};
