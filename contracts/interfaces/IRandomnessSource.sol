// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Source of audit randomness
/// @notice The market draws audits with randomness tied to the block after a job's commit block, so a
/// provider cannot know when it commits whether it will be audited. Governance chooses the source
/// (`JobMarket.setRandomnessSource`); with none set the market uses its built-in one: the hash of the
/// block after the commit block, from `blockhash` (256 blocks) or the EIP-2935 history contract (8,191
/// blocks) where the chain has it.
interface IRandomnessSource {
    enum Availability {
        /// The block the randomness comes from is not produced yet: try again later.
        Pending,
        /// `value` is final.
        Ready,
        /// Too late: the value can no longer be retrieved. The market then counts the job as audited.
        Expired
    }

    /// @notice Randomness that nobody could know before block `commitBlock + 1` was produced.
    function randomness(uint256 commitBlock) external view returns (Availability availability, bytes32 value);
}
