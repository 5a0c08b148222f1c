// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IJobMarketTypes} from "./IJobMarketTypes.sol";

/// @title Meshwork verification layer: audits, disputes, challenges
/// @notice Reached at the market's address (the market forwards these calls to its audit module, which
/// shares its storage). PROTOCOL.md §5–§7 as built; see docs/protocol.md.
///
/// A committed job is drawn for audit with probability 1 during the provider's probation, then
/// max(pMin, the consumer's request). An audit re-executes m of the job's N output chunks, chosen by the
/// same randomness (sampling with replacement). The auditor commits *blind* to its leaves,
/// `keccak256(abi.encode(jobId, auditor, leaves))`, in the transaction that claims the audit. Then the
/// provider reveals its result root, salt, output URI and the sampled leaves with Merkle proofs: when its
/// leaves open the auditor's commitment the audit has matched and the job settles in that same
/// transaction. Otherwise the auditor reveals its leaves, a tie-breaker claims the tie-break and
/// answers for the chunks that differ, and the majority decides; without a majority the dispute
/// escalates to governance. Every phase has a deadline (see `enforceDeadline`).
interface IJobAudits is IJobMarketTypes {
    /* ACTIONS */

    /// @notice An eligible provider (not the job's provider, consumer or challenger) claims the audit of a
    /// job drawn for audit (drawing it first if needed), locks `auditCollateralBps` of P and commits blind
    /// to the sampled leaves: `keccak256(abi.encode(jobId, auditor, leaves))`. The sample is known as soon
    /// as the draw's randomness is (`sampleOf`), so the auditor re-runs it before claiming. The commitment
    /// needs no salt: it only has to bind the auditor before the provider reveals; hiding it would protect
    /// nothing, since the provider's answer is already fixed by its committed root. Drawing it here is
    /// refused past the job's reveal window (`JobMarketDeadlinePassed`), as `draw` is.
    function audit(Job calldata job, bytes32 commitment) external;

    /// @notice The provider (or anyone holding its reveal) opens its commitment after the auditor
    /// committed: result root, salt, output URI, and the sampled leaves with their Merkle proofs. Leaves
    /// that open the auditor's commitment settle the job at once (provider paid, auditor's collateral back
    /// and its reward from the pool); otherwise the job is disputed and the auditor must reveal.
    /// `provider` must be the claimant: the stored commitment is bound to it (`JobMarketCommitmentMismatch`).
    function revealResult(
        Job calldata job,
        address provider,
        bytes32 resultRoot,
        bytes32 salt,
        string calldata outputURI,
        bytes32[] calldata leaves,
        bytes32[][] calldata proofs
    ) external;

    /// @notice The auditor (or anyone) opens the auditor's commitment in a dispute; `providerLeaves` are
    /// the leaves the provider revealed. Records which sampled chunks differ.
    function revealAudit(Job calldata job, bytes32[] calldata leaves, bytes32[] calldata providerLeaves) external;

    /// @notice An eligible provider with no role in the job claims the tie-break and locks
    /// `auditCollateralBps` of P; only it may answer before the deadline. A tie-breaker that misses it
    /// forfeits that collateral and the dispute escalates to governance (no second tie-break).
    function tieBreak(Job calldata job) external;

    /// @notice The tie-breaker answers for the disputed chunks (in sample order). Siding with the auditor
    /// proves fraud; with the provider, slashes the auditor; a three-way (or mixed) answer escalates, and
    /// on governance's fraud verdict such a tie-breaker gets its collateral back and nothing more.
    function revealTieBreak(
        Job calldata job,
        bytes32[] calldata leaves,
        bytes32[] calldata providerLeaves,
        bytes32[] calldata auditorLeaves
    ) external;

    /// @notice Within the challenge window of a committed job not under audit, anyone but the provider
    /// bonds `challengeBondBps` of P to force an audit, optionally naming a chunk the sample must include.
    /// Right (fraud proven): bond back plus the consumer's share of S. Wrong: the bond goes to the provider.
    /// A committed job the draw selects for audit is under audit already: `JobMarketAuditRequired`.
    function challenge(Job calldata job, bool named, uint32 chunk) external;

    /// @notice Adds `amount` to the audit pool of `token` (from the caller's internal balance first, the
    /// rest by transfer). The treasury or anyone may top the pool up; nothing can take it out but audits.
    function fundAuditPool(IERC20 token, uint256 amount) external;

    /// @notice Governance decides an escalated dispute. On `ProviderFraud` or `AuditorFraud` the honest
    /// side is the auditor or the provider alone: a tie-breaker whose answer escalated gets only its
    /// collateral back.
    function resolveEscalation(Job calldata job, Verdict verdict) external;

    /* VIEWS */

    function auditOf(Job calldata job) external view returns (AuditView memory);
    /// @notice The chunk indices an audit of `jobId` re-executes, once its randomness is known.
    function sampleOf(Job calldata job) external view returns (uint32[] memory);
    /// @notice Payment-token amount the market holds for this job: escrow, collaterals and bond.
    function heldFor(Job calldata job) external view returns (uint256);
    function auditPool(IERC20 token) external view returns (uint256);
    function auditorCommitmentHash(bytes32 jobId, address auditor, bytes32[] calldata leaves)
        external
        pure
        returns (bytes32);
    /// @notice The on-chain Merkle check of PROTOCOL.md §5 (see MerkleSha256).
    function verifyChunk(bytes32 root, uint256 chunks, uint256 index, bytes32 leaf, bytes32[] calldata proof)
        external
        pure
        returns (bool);
}
