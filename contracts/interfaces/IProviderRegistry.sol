// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Requirements} from "../libraries/JobParams.sol";

/// @title Meshwork provider registry
/// @notice Providers register a compact hardware profile, post minimum prices per payment token and bond
/// MESH stake. The job market asks this registry whether a provider may take a job, and is the only
/// caller allowed to slash, jail or update the reputation counters. (Completed jobs are counted by the
/// market, which settles them: see `IJobMarket.completedJobs`.)
/// @dev Everything a claim checks but the posted price lives in one storage slot per provider (profile,
/// stake, jail, id), so a claim costs the same whatever the number of providers.
interface IProviderRegistry {
    /* TYPES */

    /// @notice Where a provider's electricity comes from (self-declared unless attested off-chain).
    enum Energy {
        Unknown,
        Grid,
        Renewable
    }

    /// @notice The on-chain hardware profile, everything a job's requirements are checked against.
    /// @param gpuCount Number of GPUs offered (at least 1).
    /// @param vramGB Memory per GPU in GB (at least 1).
    /// @param gpuClass Class id of the GPUs (a governance-published table; 0 = unspecified).
    /// @param region ISO-3166 alpha-2 code as two upper-case ASCII bytes, or 0x0000 when undisclosed.
    /// @param energy Energy source flag.
    /// @param runtimes Bitmap of supported runtimes: bit `i` set means runtime id `i` (0..15) is supported.
    struct Profile {
        uint16 gpuCount;
        uint16 vramGB;
        uint16 gpuClass;
        bytes2 region;
        Energy energy;
        uint16 runtimes;
    }

    /// @notice Reputation counters of rare events, maintained by the market, the registration time and
    /// the time of the first slash of active stake since the stake last changed by `stake` or
    /// `requestUnstake` (0 if none; see {getPastStakeVotes}).
    struct Counters {
        uint32 timedOut;
        uint32 audited;
        uint32 failedAudits;
        uint32 slashes;
        uint40 registeredAt;
        uint40 unrecordedSlashAt;
    }

    /// @notice One pending unstake request. Its value is `shares` of the provider's unbonding pool, so a
    /// slash that hits unbonding stake reduces every pending entry pro rata in O(1). `epoch` is the pool's
    /// share epoch when the entry was made: a slash that empties the pool starts a new epoch, and entries
    /// of an earlier one are worth nothing.
    struct Unbonding {
        uint128 shares;
        uint40 releaseAt;
        uint32 epoch;
    }

    /// @notice Whether a provider may take a job, or the first reason it may not.
    enum Eligibility {
        Eligible,
        NotRegistered,
        NotActive,
        Runtime,
        Vram,
        GpuCount,
        GpuClass,
        Region,
        NotRenewable,
        PriceBelowPosted,
        NotTargetProvider,
        IsConsumer,
        ClaimsPaused // eligible in every other respect, but a guardian pause is in force
    }

    /// @notice Governed parameters of the registry.
    enum Parameter {
        MinStake,
        UnbondingPeriod,
        JailPeriod
    }

    /* EVENTS */

    event ProviderRegistered(address indexed provider, uint32 indexed id, Profile profile, string metadataURI);
    event ProfileUpdated(address indexed provider, Profile profile, string metadataURI);
    event PricePosted(address indexed provider, IERC20 indexed token, uint256 pricePerUnit);
    event Staked(address indexed provider, address indexed payer, uint256 amount, uint256 newStake);
    event UnstakeRequested(address indexed provider, uint256 indexed entryId, uint256 amount, uint256 releaseAt);
    event StakeWithdrawn(address indexed provider, uint256 amount, uint256 entriesReleased);
    event Slashed(address indexed provider, uint256 fromStake, uint256 fromUnbonding, uint256 bps);
    event Jailed(address indexed provider, uint256 until);
    event MarketSet(address indexed market);
    event ParameterSet(Parameter indexed parameter, uint256 oldValue, uint256 newValue);
    event SlashedStakeWithdrawn(address indexed to, uint256 amount);
    /// @notice The market's guardian paused claims until `until` (0 = resumed).
    event ClaimsPaused(uint256 until);

    /* ERRORS */

    /// @notice The caller is not the job market.
    error ProviderRegistryUnauthorized(address caller);
    /// @notice The market address can be set once only, and not to zero.
    error ProviderRegistryMarketAlreadySet(address market);
    error ProviderRegistryZeroAddress();
    /// @notice The account already has a profile (use `updateProfile`).
    error ProviderRegistryAlreadyRegistered(address provider);
    /// @notice The account has no profile yet.
    error ProviderRegistryNotRegistered(address provider);
    /// @notice A profile field is out of range; `field` names it.
    error ProviderRegistryInvalidProfile(string field);
    error ProviderRegistryZeroAmount();
    error ProviderRegistryArrayLengthMismatch(uint256 tokens, uint256 prices);
    /// @notice Unstaking more than the active stake.
    error ProviderRegistryInsufficientStake(address provider, uint256 have, uint256 need);
    /// @notice `withdrawStake` found no released entry at the head of the queue.
    error ProviderRegistryNothingToWithdraw(address provider, uint256 nextReleaseAt);
    error ProviderRegistryParameterOutOfBounds(Parameter parameter, uint256 value, uint256 min, uint256 max);
    error ProviderRegistryInvalidBps(uint256 bps);
    error ProviderRegistryInsufficientSlashedStake(uint256 have, uint256 need);
    /// @notice Votes were asked for a time not yet past (`clock` is the current block's timestamp).
    error ProviderRegistryFutureLookup(uint256 timepoint, uint48 clock);

    /* PROVIDER ACTIONS */

    /// @notice Registers the caller as a provider.
    /// @param profile The hardware profile; validated (gpuCount, vramGB >= 1, runtimes != 0, region A-Z).
    /// @param metadataURI Off-chain details (hardware, attestation, endpoint); emitted only.
    function register(Profile calldata profile, string calldata metadataURI) external;

    /// @notice Replaces the caller's profile. Jobs already claimed are unaffected.
    function updateProfile(Profile calldata profile, string calldata metadataURI) external;

    /// @notice Posts the caller's minimum price per work unit for `token` (0 withdraws the offer). To
    /// opt in to the compute commons at a discount, post a (lower) price for `commonsPriceKey(token)`.
    function postPrice(IERC20 token, uint256 pricePerUnit) external;

    /// @notice Posts several prices at once.
    function postPrices(IERC20[] calldata tokens, uint256[] calldata pricesPerUnit) external;

    /// @notice Bonds `amount` MESH for `provider` (anyone may top up anyone), pulled from the caller.
    function stake(address provider, uint256 amount) external;

    /// @notice `stake` with an ERC-2612 permit signed by the caller, in one transaction.
    /// @dev A permit that fails (for example front-run) is ignored if the allowance is already enough.
    function stakeWithPermit(address provider, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;

    /// @notice Moves `amount` of the caller's active stake into unbonding, withdrawable after
    /// `unbondingPeriod`. Unbonding stake stays slashable until withdrawn.
    /// @return entryId The id of the new unbonding entry.
    function requestUnstake(uint256 amount) external returns (uint256 entryId);

    /// @notice Pays out released unbonding entries, oldest first, at most `maxEntries` of them (any value,
    /// `type(uint256).max` included).
    /// @return amount The MESH transferred to the caller.
    function withdrawStake(uint256 maxEntries) external returns (uint256 amount);

    /* MARKET HOOKS (only the job market) */

    /// @notice Records a job the provider claimed but did not commit in time. The counter hooks emit
    /// nothing: the market's events (`JobTimedOut`, `AuditPassed`, `FraudProven`) already say it.
    function recordTimedOut(address provider) external;

    /// @notice Records an audit of the provider's work and its outcome.
    function recordAudit(address provider, bool passed) external;

    /// @notice Slashes `bps` of the provider's stake (active first, then unbonding) and, if `jail`,
    /// jails it for `jailPeriod` from now (a jail already running longer is kept). The slashed MESH stays in the registry for governance.
    /// @return amount MESH slashed.
    function slash(address provider, uint256 bps, bool jail) external returns (uint256 amount);

    /// @notice Pauses claims until `until` (0 resumes them). Only the market, on its guardian's behalf.
    function pauseClaims(uint256 until) external;

    /* GOVERNANCE (owner: the timelock) */

    /// @notice Sets the job market, once.
    function setMarket(address market) external;

    /// @notice Sets a governed parameter within its bounds; emits `ParameterSet(old, new)`.
    function setParameter(Parameter parameter, uint256 value) external;

    /// @notice Sends slashed MESH to `to` (the treasury's decision).
    function withdrawSlashedStake(address to, uint256 amount) external;

    /* VIEWS */

    function meshToken() external view returns (IERC20);
    function market() external view returns (address);
    function parameter(Parameter parameter) external view returns (uint256);
    function parameterBounds(Parameter parameter) external pure returns (uint256 min, uint256 max);
    function isRegistered(address provider) external view returns (bool);
    /// @notice The registry id of a provider (1, 2, ... in registration order; 0 = not registered).
    function idOf(address provider) external view returns (uint32);
    /// @notice The provider with registry id `id` (0 address if none).
    function providerById(uint32 id) external view returns (address);
    /// @notice Number of providers ever registered.
    function providerCount() external view returns (uint256);
    function profileOf(address provider) external view returns (Profile memory);
    function postedPrice(address provider, IERC20 token) external view returns (uint256);
    /// @return active Stake counted towards `minStake` and claimable work.
    /// @return unbonding Stake waiting to be released (still slashable).
    /// @return jailedUntil Time until which the provider cannot claim (0 if never jailed).
    function stakeOf(address provider) external view returns (uint256 active, uint256 unbonding, uint256 jailedUntil);
    function isActive(address provider) external view returns (bool);
    function countersOf(address provider) external view returns (Counters memory);
    /// @notice The votes a provider's stake gives it now: its active stake, or 0 when it was slashed since
    /// its stake last changed (a slash writes no history, to keep disputes cheap; the next `stake` or
    /// `requestUnstake` counts the stake again). Unbonding stake does not vote. The governor adds these
    /// votes to the provider's delegated MESH votes; they cannot be delegated.
    function stakeVotes(address provider) external view returns (uint256);
    /// @notice {stakeVotes} at a past `timepoint` (a timestamp, MESH's ERC-6372 clock): the active stake
    /// at that time, or 0 when a slash of active stake came at or after the stake's last change before it
    /// and at or before `timepoint` (never more than the stake the provider had then). A slash after
    /// `timepoint` does not change it: past votes never change.
    /// @dev Reverts {ProviderRegistryFutureLookup} unless `timepoint` is before the current block's time.
    function getPastStakeVotes(address provider, uint256 timepoint) external view returns (uint256);
    /// @notice An unbonding entry's current MESH value and release time.
    function unbondingEntry(address provider, uint256 entryId) external view returns (uint256 amount, uint256 releaseAt);
    /// @return head Id of the oldest unpaid entry.
    /// @return next Id the next request will get.
    function unbondingQueue(address provider) external view returns (uint256 head, uint256 next);
    function slashedStake() external view returns (uint256);
    function totalStaked() external view returns (uint256);
    /// @notice The price-board key under which a provider posts its discounted price for compute-commons
    /// jobs paid in `token`.
    function commonsPriceKey(IERC20 token) external pure returns (IERC20);
    /// @notice Time until which claims are paused (0 or past: not paused).
    function claimsPausedUntil() external view returns (uint256);

    /// @notice Checks a provider against a job, in the order of `Eligibility`: registered, active (stake
    /// >= minStake and not jailed), runtime, VRAM, GPU count, GPU class, region, renewable, (when
    /// `checkPrice`) `price >= postedPrice * workUnits` with a non-zero posted price (for commons jobs the
    /// provider's commons price counts when it posted one), and last, claims not paused: `ClaimsPaused`
    /// means eligible in every other respect, so audits, which a pause must not stop, accept it.
    /// @return eligibility `Eligible` or the first unmet condition.
    /// @return id The provider's registry id.
    function checkEligibility(
        address provider,
        IERC20 token,
        Requirements requirements,
        uint256 price,
        uint256 workUnits,
        bool checkPrice
    ) external view returns (Eligibility eligibility, uint32 id);
}
