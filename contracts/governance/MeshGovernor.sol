// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorPreventLateQuorum} from "@openzeppelin/contracts/governance/extensions/GovernorPreventLateQuorum.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {GovernorVotesQuorumFraction} from "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {IProviderRegistry} from "../interfaces/IProviderRegistry.sol";

/// @title MeshGovernor
/// @notice The Meshwork DAO: MESH holders and stakers propose, vote (for / against / abstain) and,
/// through the timelock that owns every governed contract, execute. An account's votes are the MESH
/// delegated to it plus its own active stake in the provider registry
/// ({IProviderRegistry.getPastStakeVotes}): staked MESH, held by the registry, would otherwise vote
/// for nobody. Standard OpenZeppelin Governor otherwise, so Tally and other Governor front ends work
/// (they show the governor's `getVotes`). Its clock is MESH's: timestamps (ERC-6372), so every delay and
/// period is in seconds on any chain.
/// @dev Settings (delay, period, threshold), quorum fraction and the late-quorum extension are governed
/// through `onlyGovernance` setters, that is by proposals executed by the timelock. The quorum is a
/// share of MESH's whole supply, staked MESH included.
contract MeshGovernor is
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction,
    GovernorPreventLateQuorum,
    GovernorTimelockControl
{
    IProviderRegistry private immutable _stakeRegistry;

    /// @param token MESH (ERC20Votes, timestamp clock).
    /// @param stakeRegistry_ The provider registry whose active stakes vote with their providers.
    /// @param timelock The timelock that executes proposals and owns the protocol.
    /// @param votingDelay_ Seconds between a proposal and the start of its vote (1 day live).
    /// @param votingPeriod_ Seconds a vote lasts (7 days live).
    /// @param proposalThreshold_ MESH votes needed to propose.
    /// @param quorumPercent Share of the supply (at the vote's start) that must vote for or abstain (4).
    /// @param lateQuorumExtension Seconds a vote is extended when quorum is reached late (1 day live).
    constructor(
        IVotes token,
        IProviderRegistry stakeRegistry_,
        TimelockController timelock,
        uint48 votingDelay_,
        uint32 votingPeriod_,
        uint256 proposalThreshold_,
        uint256 quorumPercent,
        uint48 lateQuorumExtension
    )
        Governor("Meshwork DAO")
        GovernorSettings(votingDelay_, votingPeriod_, proposalThreshold_)
        GovernorVotes(token)
        GovernorVotesQuorumFraction(quorumPercent)
        GovernorPreventLateQuorum(lateQuorumExtension)
        GovernorTimelockControl(timelock)
    {
        _stakeRegistry = stakeRegistry_;
    }

    /// @notice The provider registry whose stakes vote (see the contract's notice).
    function stakeRegistry() external view returns (IProviderRegistry) {
        return _stakeRegistry;
    }

    /// @dev Delegated MESH votes plus the account's own active stake at `timepoint`.
    function _getVotes(address account, uint256 timepoint, bytes memory params)
        internal
        view
        override(Governor, GovernorVotes)
        returns (uint256)
    {
        return super._getVotes(account, timepoint, params) + _stakeRegistry.getPastStakeVotes(account, timepoint);
    }

    /* The overrides Solidity requires when several extensions define the same function. */

    function votingDelay() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingDelay();
    }

    function votingPeriod() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingPeriod();
    }

    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    function quorum(uint256 timepoint) public view override(Governor, GovernorVotesQuorumFraction) returns (uint256) {
        return super.quorum(timepoint);
    }

    function state(uint256 proposalId) public view override(Governor, GovernorTimelockControl) returns (ProposalState) {
        return super.state(proposalId);
    }

    function proposalNeedsQueuing(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (bool)
    {
        return super.proposalNeedsQueuing(proposalId);
    }

    function proposalDeadline(uint256 proposalId)
        public
        view
        override(Governor, GovernorPreventLateQuorum)
        returns (uint256)
    {
        return super.proposalDeadline(proposalId);
    }

    function _tallyUpdated(uint256 proposalId) internal override(Governor, GovernorPreventLateQuorum) {
        super._tallyUpdated(proposalId);
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}
