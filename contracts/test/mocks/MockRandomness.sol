// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IRandomnessSource} from "../../interfaces/IRandomnessSource.sol";

/// @title A randomness source tests control: they choose the value (and so the audit draw) and can make
/// it pending or expired.
contract MockRandomness is IRandomnessSource {
    Availability public availability = Availability.Ready;
    bytes32 public value;

    function set(Availability availability_, bytes32 value_) external {
        availability = availability_;
        value = value_;
    }

    function randomness(uint256) external view returns (Availability, bytes32) {
        return (availability, value);
    }
}
