// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title MeshTimelock
/// @notice OpenZeppelin's TimelockController as Meshwork deploys it: the governor is its only proposer
/// and canceller, anyone may execute a proposal once its delay has passed, and it is its own admin (the
/// deploy script renounces the deployer's temporary admin role). It owns the registry, the market and the
/// compute commons, and holds the treasury once withdrawn from the market.
contract MeshTimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
