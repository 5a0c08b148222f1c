// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobMarket} from "../interfaces/IJobMarket.sol";

/// @notice A job's whole mutable state in one storage word. Its layout depends on the state:
///
///   Open, Settled, Refunded, Cancelled, Slashed:  state
///   Claimed:    state (8) | provider (160) | commit deadline (40) | provider id (32)
///   Committed:  state (8) | provider id (32) | committed at (32) | commit block (32) | commitment (152)
///
/// Keeping the commitment in the job's word instead of a slot of its own saves a new storage slot
/// (22,100 gas) per job. The provider's address is not needed once committed: the commitment binds it,
/// and the registry id identifies it for slashing. 152 bits of the commitment keep second-preimage
/// resistance at 2^152 and collision resistance at 2^76 work (see docs/protocol.md).
type JobSlot is uint256;

using JobSlots for JobSlot global;

/// @title JobSlots
/// @notice Packs and unpacks {JobSlot}.
library JobSlots {
    uint256 private constant STATE_MASK = 0xff;
    uint256 private constant COMMITMENT_BITS = 152;

    function state(JobSlot slot) internal pure returns (IJobMarket.JobState) {
        return IJobMarket.JobState(JobSlot.unwrap(slot) & STATE_MASK);
    }

    /// @notice A slot holding only a state (Open and the final states).
    function only(IJobMarket.JobState s) internal pure returns (JobSlot) {
        return JobSlot.wrap(uint256(s));
    }

    /* Claimed */

    function claimed(address provider, uint256 deadline, uint32 providerId) internal pure returns (JobSlot) {
        return JobSlot.wrap(
            uint256(IJobMarket.JobState.Claimed) | (uint256(uint160(provider)) << 8)
                | (uint256(uint40(deadline)) << 168) | (uint256(providerId) << 208)
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

    /* Committed */

    function committed(uint32 providerId, uint256 committedAt_, uint256 commitBlock_, bytes32 commitment_)
        internal
        pure
        returns (JobSlot)
    {
        return JobSlot.wrap(
            uint256(IJobMarket.JobState.Committed) | (uint256(providerId) << 8) | (uint256(uint32(committedAt_)) << 40)
                | (uint256(uint32(commitBlock_)) << 72) | (truncate(commitment_) << 104)
        );
    }

    function committerId(JobSlot slot) internal pure returns (uint32) {
        return uint32(JobSlot.unwrap(slot) >> 8);
    }

    function committedAt(JobSlot slot) internal pure returns (uint256) {
        return uint32(JobSlot.unwrap(slot) >> 40);
    }

    function commitBlock(JobSlot slot) internal pure returns (uint256) {
        return uint32(JobSlot.unwrap(slot) >> 72);
    }

    /// @notice The stored (truncated) commitment.
    function commitment(JobSlot slot) internal pure returns (uint256) {
        return JobSlot.unwrap(slot) >> 104;
    }

    /// @notice The part of a full commitment the slot stores: its low 152 bits.
    function truncate(bytes32 fullCommitment) internal pure returns (uint256) {
        return uint256(fullCommitment) & ((1 << COMMITMENT_BITS) - 1);
    }
}
