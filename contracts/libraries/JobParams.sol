// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice What a provider's profile must satisfy to claim a job, packed in one word:
///
///   runtime (8) | minVramGB (16) | minGpuCount (16) | gpuClass (16) | region (16) | renewableOnly (8)
///   | commons (8)
///
/// - runtime: runtime id (0..15); the provider's runtime bitmap must have this bit.
/// - minVramGB, minGpuCount: lower bounds on the provider's profile.
/// - gpuClass: required GPU class id, 0 = any.
/// - region: required ISO-3166 alpha-2 code as two ASCII bytes ("DE" = 0x4445), 0 = any.
/// - renewableOnly: 1 = only providers flagged renewable.
/// - commons: 1 = a compute-commons job (only the market's commons contract may create it): providers
///   are priced by their commons price (`ProviderRegistry.commonsPriceKey`) when they posted one.
///
/// Jobs travel as calldata on every step, so their small fields are packed into a few words: a 32-byte
/// ABI word per field would triple the calldata each lifecycle pays. The SDK packs and unpacks them.
type Requirements is uint256;

/// @notice How a result is verified, packed: chunks (32) | auditChunks (16) | auditBps (16).
/// - chunks: number N of output chunks the result Merkle tree has (>= 1).
/// - auditChunks: number m of chunks an audit re-executes (1 <= m <= N).
/// - auditBps: audit probability the consumer requests (the governed floor applies when higher).
type Verification is uint256;

/// @notice The economic terms fixed when a job is created (governance changes apply to new jobs only):
///
///   feeBps (16) | collateralBps (16) | timeoutSlashBps (16) | challengeWindow (32) | revealWindow (32)
///   | pMinBps (16) | probationJobs (16) | auditRewardBps (16) | auditCollateralBps (16) | externalRandomness (8)
///   | auditClaimWindow (32) | auditRevealWindow (32)
///
/// - feeBps: protocol fee, share of the price P credited to the treasury at settlement.
/// - collateralBps: provider collateral S = P * collateralBps / 10000 (20000 = 2 x P).
/// - timeoutSlashBps: share of S paid to the consumer when the claimant does not commit in time.
/// - challengeWindow: seconds after the commit during which the result can be challenged.
/// - revealWindow: seconds the provider has to reveal once it must (after the challenge window, or
///   after the auditor's commitment when audited).
/// - pMinBps: audit probability floor once out of probation (the consumer may ask for more).
/// - probationJobs: a provider's first `probationJobs` settled jobs in this token are always audited.
/// - auditRewardBps: share of P an auditor (and a tie-breaker) is paid from the pool per audit.
/// - auditCollateralBps: collateral an auditor (and a tie-breaker) locks, as a share of P.
/// - externalRandomness: 1 when the job draws from the governed randomness source, 0 for the built-in
///   block-hash source (fixed at creation so the common case reads no storage).
/// - auditClaimWindow: seconds an auditor (or a tie-breaker) has to claim.
/// - auditRevealWindow: seconds an auditor has to reveal in a dispute, and a tie-breaker to answer.
type Terms is uint256;

using RequirementsLib for Requirements global;
using VerificationLib for Verification global;
using TermsLib for Terms global;

library RequirementsLib {
    function pack(uint8 runtime_, uint16 minVramGB_, uint16 minGpuCount_, uint16 gpuClass_, bytes2 region_, bool renewableOnly_)
        internal
        pure
        returns (Requirements)
    {
        return Requirements.wrap(
            uint256(runtime_) | (uint256(minVramGB_) << 8) | (uint256(minGpuCount_) << 24) | (uint256(gpuClass_) << 40)
                | (uint256(uint16(region_)) << 56) | (renewableOnly_ ? 1 << 72 : 0)
        );
    }

    function runtime(Requirements r) internal pure returns (uint8) {
        return uint8(Requirements.unwrap(r));
    }

    function minVramGB(Requirements r) internal pure returns (uint16) {
        return uint16(Requirements.unwrap(r) >> 8);
    }

    function minGpuCount(Requirements r) internal pure returns (uint16) {
        return uint16(Requirements.unwrap(r) >> 24);
    }

    function gpuClass(Requirements r) internal pure returns (uint16) {
        return uint16(Requirements.unwrap(r) >> 40);
    }

    function region(Requirements r) internal pure returns (bytes2) {
        return bytes2(uint16(Requirements.unwrap(r) >> 56));
    }

    function renewableOnly(Requirements r) internal pure returns (bool) {
        return uint8(Requirements.unwrap(r) >> 72) != 0;
    }

    function commons(Requirements r) internal pure returns (bool) {
        return uint8(Requirements.unwrap(r) >> 80) != 0;
    }

    /// @notice The same requirements, marked as a commons job.
    function asCommons(Requirements r) internal pure returns (Requirements) {
        return Requirements.wrap(Requirements.unwrap(r) | (1 << 80));
    }

    /// @notice True when no bits are set beyond the documented fields and both flags are 0 or 1.
    function isWellFormed(Requirements r) internal pure returns (bool) {
        uint256 w = Requirements.unwrap(r);
        return w >> 81 == 0 && (w >> 73) & 0x7f == 0;
    }
}

library VerificationLib {
    function pack(uint32 chunks_, uint16 auditChunks_, uint16 auditBps_) internal pure returns (Verification) {
        return Verification.wrap(uint256(chunks_) | (uint256(auditChunks_) << 32) | (uint256(auditBps_) << 48));
    }

    function chunks(Verification v) internal pure returns (uint32) {
        return uint32(Verification.unwrap(v));
    }

    function auditChunks(Verification v) internal pure returns (uint16) {
        return uint16(Verification.unwrap(v) >> 32);
    }

    function auditBps(Verification v) internal pure returns (uint16) {
        return uint16(Verification.unwrap(v) >> 48);
    }

    function isWellFormed(Verification v) internal pure returns (bool) {
        return Verification.unwrap(v) >> 64 == 0;
    }
}

library TermsLib {
    /// @notice Packs the terms; see {Terms} for the layout.
    function pack(
        uint16 feeBps_,
        uint16 collateralBps_,
        uint16 timeoutSlashBps_,
        uint32 challengeWindow_,
        uint32 revealWindow_,
        uint16 pMinBps_,
        uint16 probationJobs_,
        uint16 auditRewardBps_,
        uint16 auditCollateralBps_,
        bool externalRandomness_,
        uint32 auditClaimWindow_,
        uint32 auditRevealWindow_
    ) internal pure returns (Terms) {
        return Terms.wrap(
            uint256(feeBps_) | (uint256(collateralBps_) << 16) | (uint256(timeoutSlashBps_) << 32)
                | (uint256(challengeWindow_) << 48) | (uint256(revealWindow_) << 80) | (uint256(pMinBps_) << 112)
                | (uint256(probationJobs_) << 128) | (uint256(auditRewardBps_) << 144) | (uint256(auditCollateralBps_) << 160)
                | (externalRandomness_ ? 1 << 176 : 0) | (uint256(auditClaimWindow_) << 184)
                | (uint256(auditRevealWindow_) << 216)
        );
    }

    function feeBps(Terms t) internal pure returns (uint16) {
        return uint16(Terms.unwrap(t));
    }

    function collateralBps(Terms t) internal pure returns (uint16) {
        return uint16(Terms.unwrap(t) >> 16);
    }

    function timeoutSlashBps(Terms t) internal pure returns (uint16) {
        return uint16(Terms.unwrap(t) >> 32);
    }

    function challengeWindow(Terms t) internal pure returns (uint32) {
        return uint32(Terms.unwrap(t) >> 48);
    }

    function revealWindow(Terms t) internal pure returns (uint32) {
        return uint32(Terms.unwrap(t) >> 80);
    }

    function pMinBps(Terms t) internal pure returns (uint16) {
        return uint16(Terms.unwrap(t) >> 112);
    }

    function probationJobs(Terms t) internal pure returns (uint16) {
        return uint16(Terms.unwrap(t) >> 128);
    }

    function auditRewardBps(Terms t) internal pure returns (uint16) {
        return uint16(Terms.unwrap(t) >> 144);
    }

    function auditCollateralBps(Terms t) internal pure returns (uint16) {
        return uint16(Terms.unwrap(t) >> 160);
    }

    function externalRandomness(Terms t) internal pure returns (bool) {
        return uint8(Terms.unwrap(t) >> 176) != 0;
    }

    function auditClaimWindow(Terms t) internal pure returns (uint32) {
        return uint32(Terms.unwrap(t) >> 184);
    }

    function auditRevealWindow(Terms t) internal pure returns (uint32) {
        return uint32(Terms.unwrap(t) >> 216);
    }
}
