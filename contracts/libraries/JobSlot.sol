// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobMarketTypes} from "../interfaces/IJobMarketTypes.sol";

/// @notice A job's whole mutable state in one storage word. Its layout depends on the state:
///
///   Open and final states:  state
///   Claimed:                state (8) | provider (160) | commit deadline (40) | provider id (32)
///   every later state:      state (8) | provider id (32) | clock (32) | commit block (32) | digest (152)
///
/// In the later states `clock` is the commit time (Committed, Audited, Revealing) or the end of the
/// challenge window (Challengeable), and `digest` is the low 152 bits of the provider's commitment
/// bound to its claimant, keccak256(abi.encode(commitment, claimant)), until it reveals in an audit,
/// then of the hash of its revealed leaves. Once disputed (Disputed,
/// Escalated) the job needs neither clock nor commit block any more: those 64 bits hold the mask of
/// the sampled chunks whose leaves differ.
///
/// Keeping the commitment in the job's word instead of a slot of its own saves a new storage slot
/// (22,100 gas) per job. The provider's address is not needed once committed: the stored digest binds
/// it (a reveal names it, and opens only with the claimant's address), and the registry id identifies
/// it for slashing. 152 bits keep second-preimage resistance at 2^152
/// and collision resistance at 2^76 work (see docs/protocol.md).
type JobSlot is uint256;

using JobSlots for JobSlot global;

/// @title JobSlots
/// @notice Packs and unpacks {JobSlot}.
library JobSlots {
    uint256 private constant STATE_MASK = 0xff;
    uint256 private constant DIGEST_SHIFT = 104;
    uint256 private constant CLOCK_SHIFT = 40;
    uint256 private constant DIGEST_MASK = (1 << 152) - 1;

    function state(JobSlot slot) internal pure returns (IJobMarketTypes.JobState) {
        return IJobMarketTypes.JobState(JobSlot.unwrap(slot) & STATE_MASK);
    }

    /// @notice A slot holding only a state (Open and the final states).
    function only(IJobMarketTypes.JobState s) internal pure returns (JobSlot) {
        return JobSlot.wrap(uint256(s));
    }

    /// @notice The same word in another state (the later states share one layout).
    function withState(JobSlot slot, IJobMarketTypes.JobState s) internal pure returns (JobSlot) {
        return JobSlot.wrap((JobSlot.unwrap(slot) & ~STATE_MASK) | uint256(s));
    }

    /* Claimed */

    function claimed(address provider, uint256 deadline, uint32 id) internal pure returns (JobSlot) {
        return JobSlot.wrap(
            uint256(IJobMarketTypes.JobState.Claimed) | (uint256(uint160(provider)) << 8) | (uint256(uint40(deadline)) << 168)
                | (uint256(id) << 208)
        );
    }

    function claimant(JobSlot slot) internal pure returns (address) {
        return address(uint160(JobSlot.unwrap(slot) >> 8));
    }

    function commitDeadline(JobSlot slot) internal pure returns (uint256) {
        return uint40(JobSlot.unwrap(slot) >> 168);
    }

    function claimantId(JobSlot slot) internal pure returns (uint32) {
        return uint32(JobSlot.unwrap(slot) >> 208);
    }

    /* Committed and later */

    function committed(uint32 id, uint256 committedAt, uint256 commitBlock_, bytes32 commitment)
        internal
        pure
        returns (JobSlot)
    {
        return JobSlot.wrap(
            uint256(IJobMarketTypes.JobState.Committed) | (uint256(id) << 8)
                | (uint256(uint32(committedAt)) << CLOCK_SHIFT) | (uint256(uint32(commitBlock_)) << 72)
                | (truncate(commitment) << DIGEST_SHIFT)
        );
    }

    function providerId(JobSlot slot) internal pure returns (uint32) {
        return uint32(JobSlot.unwrap(slot) >> 8);
    }

    /// @notice Commit time, or the end of the challenge window in `Challengeable`.
    function clock(JobSlot slot) internal pure returns (uint256) {
        return uint32(JobSlot.unwrap(slot) >> CLOCK_SHIFT);
    }

    function withClock(JobSlot slot, uint256 time) internal pure returns (JobSlot) {
        uint256 cleared = JobSlot.unwrap(slot) & ~(uint256(type(uint32).max) << CLOCK_SHIFT);
        return JobSlot.wrap(cleared | (uint256(uint32(time)) << CLOCK_SHIFT));
    }

    /// @notice Disputed: bit k set when the provider's and the auditor's leaves differ at sample position k.
    function disputed(JobSlot slot) internal pure returns (uint64) {
        return uint64(JobSlot.unwrap(slot) >> CLOCK_SHIFT);
    }

    function withDisputed(JobSlot slot, uint64 mask) internal pure returns (JobSlot) {
        uint256 cleared = JobSlot.unwrap(slot) & ~(uint256(type(uint64).max) << CLOCK_SHIFT);
        return JobSlot.wrap(cleared | (uint256(mask) << CLOCK_SHIFT));
    }

    function commitBlock(JobSlot slot) internal pure returns (uint256) {
        return uint32(JobSlot.unwrap(slot) >> 72);
    }

    /// @notice The stored 152-bit digest: the commitment, or the revealed leaves' hash.
    function digest(JobSlot slot) internal pure returns (uint256) {
        return JobSlot.unwrap(slot) >> DIGEST_SHIFT;
    }

    function withDigest(JobSlot slot, bytes32 fullHash) internal pure returns (JobSlot) {
        return JobSlot.wrap((JobSlot.unwrap(slot) & ((1 << DIGEST_SHIFT) - 1)) | (truncate(fullHash) << DIGEST_SHIFT));
    }

    /// @notice The part of a full hash the slot stores: its low 152 bits.
    function truncate(bytes32 fullHash) internal pure returns (uint256) {
        return uint256(fullHash) & DIGEST_MASK;
    }
}
