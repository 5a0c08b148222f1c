// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobMarketTypes} from "./IJobMarketTypes.sol";

/// @title Meshwork market administration: guardian pause and the compute commons
/// @notice Reached at the market's address (forwarded to the audit module, like `IJobAudits`).
///
/// The guardian is optional, set and removed by governance. It can only pause *new* jobs and claims,
/// for at most `maxPauseDuration`, and must then wait as long again before it can pause again; it can
/// never move, freeze or redirect funds: deposits, withdrawals, commits, settlements, audits and
/// deadlines all keep working while paused. Governance can lift a pause at any time.
interface IMarketAdmin is IJobMarketTypes {
    /// @notice Sets (or with 0 removes) the guardian. Owner (the timelock) only.
    function setGuardian(address guardian) external;

    /// @notice Pauses job creation and claims for `duration` seconds (at most `maxPauseDuration`).
    /// Guardian only; not again until `maxPauseDuration` after the previous pause ended.
    function pause(uint256 duration) external;

    /// @notice Lifts the pause. The guardian or the owner.
    function unpause() external;

    /// @notice Sets the compute-commons contract, the only creator of commons jobs. Owner only.
    function setCommons(address commons) external;

    function guardian() external view returns (address);
    /// @notice Time until which new jobs and claims are paused (past or 0: not paused).
    function pausedUntil() external view returns (uint256);
    function commons() external view returns (address);
}
