// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {IProviderRegistry} from "../interfaces/IProviderRegistry.sol";
import {Requirements} from "../libraries/JobParams.sol";

/// @title ProviderRegistry
/// @notice See {IProviderRegistry}. Owned by the governance timelock.
contract ProviderRegistry is IProviderRegistry, Ownable {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;
    using Checkpoints for Checkpoints.Trace208;

    /* STORAGE */

    /// @dev Profile, active stake, jail and id in one slot: a claim reads one slot per provider.
    struct ProviderRecord {
        uint16 gpuCount;
        uint16 vramGB;
        uint16 gpuClass;
        bytes2 region;
        Energy energy;
        uint16 runtimes;
        uint96 stake;
        uint40 jailedUntil;
        uint32 id;
    }

    /// @dev Unbonding stake as a pool of shares: a slash lowers `amount`, so every entry loses pro rata.
    struct UnbondingPool {
        uint128 amount;
        uint128 shares;
    }

    /// @dev `epoch` starts again when a slash empties the pool: the old entries' shares, worth nothing,
    /// leave the pool, so new requests get shares 1:1 instead of ever more shares per MESH.
    struct UnbondingQueue {
        uint64 head;
        uint64 next;
        uint32 epoch;
    }

    /// @dev `claimsPausedUntil` shares the slot every claim reads anyway, so the pause check is free.
    struct Config {
        uint96 minStake;
        uint40 unbondingPeriod;
        uint40 jailPeriod;
        uint40 claimsPausedUntil;
    }

    uint256 private constant BPS = 10_000;

    IERC20 private immutable _mesh;
    address private _market;
    Config private _config;
    /// @dev All MESH the registry holds, in one slot: bonded (active + unbonding) and slashed.
    struct Totals {
        uint128 staked;
        uint128 slashed;
    }

    Totals private _totals;
    uint32 private _providerCount;

    mapping(address provider => ProviderRecord) private _providers;
    mapping(uint32 id => address provider) private _providerById;
    mapping(address provider => mapping(IERC20 token => uint256 pricePerUnit)) private _prices;
    mapping(address provider => Counters) private _counters;
    mapping(address provider => UnbondingPool) private _pools;
    mapping(address provider => UnbondingQueue) private _queues;
    mapping(address provider => mapping(uint256 entryId => Unbonding)) private _entries;
    /// @dev Each provider's active stake after each change by `stake` or `requestUnstake`, keyed by time,
    /// for its votes. A slash writes no checkpoint (dispute gas) but stamps `Counters.unrecordedSlashAt`
    /// if unset; the next change first writes a 0 at that time (see `_recordStake`, `_stakeVotesAt`).
    mapping(address provider => Checkpoints.Trace208) private _stakeHistory;

    modifier onlyMarket() {
        if (msg.sender != _market) revert ProviderRegistryUnauthorized(msg.sender);
        _;
    }

    /// @param mesh The MESH token.
    /// @param owner_ Initial owner (the deployer, who hands ownership to the timelock).
    /// @param minStake_ Minimum active stake to claim jobs.
    /// @param unbondingPeriod_ Seconds between `requestUnstake` and `withdrawStake`.
    /// @param jailPeriod_ Seconds a provider slashed for fraud cannot claim.
    constructor(IERC20 mesh, address owner_, uint256 minStake_, uint256 unbondingPeriod_, uint256 jailPeriod_)
        Ownable(owner_)
    {
        if (address(mesh) == address(0)) revert ProviderRegistryZeroAddress();
        _mesh = mesh;
        _setParameter(Parameter.MinStake, minStake_);
        _setParameter(Parameter.UnbondingPeriod, unbondingPeriod_);
        _setParameter(Parameter.JailPeriod, jailPeriod_);
    }

    /* PROFILE AND PRICES */

    /// @inheritdoc IProviderRegistry
    function register(Profile calldata profile, string calldata metadataURI) external {
        if (_providers[msg.sender].gpuCount != 0) revert ProviderRegistryAlreadyRegistered(msg.sender);
        _writeProfile(msg.sender, profile);
        uint32 id = ++_providerCount;
        _providers[msg.sender].id = id;
        _providerById[id] = msg.sender;
        // Also makes the counters slot non-zero, so the first job's counter update is not a new slot.
        // Also makes the counters slot non-zero, so a first counter update is not a new slot.
        _counters[msg.sender].registeredAt = uint40(block.timestamp);
        emit ProviderRegistered(msg.sender, id, profile, metadataURI);
    }

    /// @inheritdoc IProviderRegistry
    function updateProfile(Profile calldata profile, string calldata metadataURI) external {
        if (_providers[msg.sender].gpuCount == 0) revert ProviderRegistryNotRegistered(msg.sender);
        _writeProfile(msg.sender, profile);
        emit ProfileUpdated(msg.sender, profile, metadataURI);
    }

    /// @inheritdoc IProviderRegistry
    function postPrice(IERC20 token, uint256 pricePerUnit) external {
        _postPrice(token, pricePerUnit);
    }

    /// @inheritdoc IProviderRegistry
    function postPrices(IERC20[] calldata tokens, uint256[] calldata pricesPerUnit) external {
        if (tokens.length != pricesPerUnit.length) {
            revert ProviderRegistryArrayLengthMismatch(tokens.length, pricesPerUnit.length);
        }
        for (uint256 i; i < tokens.length; ++i) {
            _postPrice(tokens[i], pricesPerUnit[i]);
        }
    }

    /* STAKE */

    /// @inheritdoc IProviderRegistry
    function stake(address provider, uint256 amount) external {
        _stake(provider, amount);
    }

    /// @inheritdoc IProviderRegistry
    function stakeWithPermit(address provider, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        // A front-run permit makes this call fail; the allowance it set is still there, so carry on.
        try IERC20Permit(address(_mesh)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        _stake(provider, amount);
    }

    /// @inheritdoc IProviderRegistry
    function requestUnstake(uint256 amount) external returns (uint256 entryId) {
        if (amount == 0) revert ProviderRegistryZeroAmount();
        ProviderRecord storage record = _providers[msg.sender];
        if (record.stake < amount) revert ProviderRegistryInsufficientStake(msg.sender, record.stake, amount);
        // Safe: checked just above.
        unchecked {
            record.stake -= uint96(amount);
        }
        _recordStake(msg.sender, record.stake);

        UnbondingPool storage pool = _pools[msg.sender];
        // Virtual share and amount of 1 keep the price defined even after a slash empties the pool.
        uint256 shares = Math.mulDiv(amount, uint256(pool.shares) + 1, uint256(pool.amount) + 1);
        pool.amount += amount.toUint128();
        pool.shares += shares.toUint128();

        UnbondingQueue storage queue = _queues[msg.sender];
        entryId = queue.next++;
        uint256 releaseAt = block.timestamp + _config.unbondingPeriod;
        _entries[msg.sender][entryId] = Unbonding(shares.toUint128(), releaseAt.toUint40(), queue.epoch);
        emit UnstakeRequested(msg.sender, entryId, amount, releaseAt);
    }

    /// @inheritdoc IProviderRegistry
    function withdrawStake(uint256 maxEntries) external returns (uint256 amount) {
        UnbondingQueue storage queue = _queues[msg.sender];
        UnbondingPool storage pool = _pools[msg.sender];
        uint256 head = queue.head;
        uint256 end = queue.next - head > maxEntries ? head + maxEntries : queue.next; // no overflow for any maxEntries
        uint32 epoch = queue.epoch;
        uint256 released;
        for (; head < end; ++head) {
            Unbonding memory entry = _entries[msg.sender][head];
            if (entry.releaseAt > block.timestamp) break;
            // An entry of an earlier epoch lost everything to the slash that emptied the pool.
            if (entry.epoch == epoch) {
                uint256 value = Math.mulDiv(entry.shares, uint256(pool.amount) + 1, uint256(pool.shares) + 1);
                if (value > pool.amount) value = pool.amount;
                pool.amount -= uint128(value);
                pool.shares -= entry.shares;
                amount += value;
            }
            delete _entries[msg.sender][head];
            ++released;
        }
        if (released == 0) {
            uint256 nextRelease = head < queue.next ? _entries[msg.sender][head].releaseAt : 0;
            revert ProviderRegistryNothingToWithdraw(msg.sender, nextRelease);
        }
        queue.head = uint64(head);
        _totals.staked -= uint128(amount);
        emit StakeWithdrawn(msg.sender, amount, released);
        if (amount != 0) _mesh.safeTransfer(msg.sender, amount);
    }

    /* MARKET HOOKS */

    /// @inheritdoc IProviderRegistry
    function recordTimedOut(address provider) external onlyMarket {
        ++_counters[provider].timedOut;
    }

    /// @inheritdoc IProviderRegistry
    function recordAudit(address provider, bool passed) external onlyMarket {
        Counters storage counters = _counters[provider];
        ++counters.audited;
        if (!passed) ++counters.failedAudits;
    }

    /// @inheritdoc IProviderRegistry
    function slash(address provider, uint256 bps, bool jail) external onlyMarket returns (uint256 amount) {
        if (bps > BPS) revert ProviderRegistryInvalidBps(bps);
        ProviderRecord storage record = _providers[provider];
        UnbondingPool storage pool = _pools[provider];
        amount = (uint256(record.stake) + pool.amount) * bps / BPS;
        uint256 fromStake = Math.min(amount, record.stake);
        uint256 fromUnbonding = amount - fromStake;
        // Safe: fromStake <= stake and fromUnbonding <= pool.amount because bps <= 100%.
        unchecked {
            record.stake -= uint96(fromStake);
        }
        if (fromUnbonding != 0) {
            if (fromUnbonding == pool.amount) {
                // Emptied (only a 100% slash can): a new share epoch, so later requests are priced 1:1.
                pool.amount = 0;
                pool.shares = 0;
                ++_queues[provider].epoch;
            } else {
                unchecked {
                    pool.amount -= uint128(fromUnbonding);
                }
            }
        }
        Totals memory totals = _totals;
        _totals = Totals(totals.staked - uint128(amount), totals.slashed + uint128(amount));
        Counters storage counters = _counters[provider];
        ++counters.slashes;
        // The stake's votes stop from now until its next change (`_stakeVotesAt`): cheaper than a checkpoint.
        if (fromStake != 0 && counters.unrecordedSlashAt == 0) counters.unrecordedSlashAt = uint40(block.timestamp);
        emit Slashed(provider, fromStake, fromUnbonding, bps);
        if (jail) {
            // A later slash never shortens a jail (the jail period may have been lowered since).
            uint256 until = Math.max(block.timestamp + _config.jailPeriod, record.jailedUntil);
            record.jailedUntil = until.toUint40();
            emit Jailed(provider, until);
        }
    }

    /// @inheritdoc IProviderRegistry
    function pauseClaims(uint256 until) external onlyMarket {
        _config.claimsPausedUntil = until.toUint40();
        emit ClaimsPaused(until);
    }

    /* GOVERNANCE */

    /// @inheritdoc IProviderRegistry
    function setMarket(address market_) external onlyOwner {
        if (_market != address(0)) revert ProviderRegistryMarketAlreadySet(_market);
        if (market_ == address(0)) revert ProviderRegistryZeroAddress();
        _market = market_;
        emit MarketSet(market_);
    }

    /// @inheritdoc IProviderRegistry
    function setParameter(Parameter which, uint256 value) external onlyOwner {
        _setParameter(which, value);
    }

    /// @inheritdoc IProviderRegistry
    function withdrawSlashedStake(address to, uint256 amount) external onlyOwner {
        if (to == address(0)) revert ProviderRegistryZeroAddress();
        uint256 slashed = _totals.slashed;
        if (amount > slashed) revert ProviderRegistryInsufficientSlashedStake(slashed, amount);
        _totals.slashed = uint128(slashed - amount);
        emit SlashedStakeWithdrawn(to, amount);
        _mesh.safeTransfer(to, amount);
    }

    /* VIEWS */

    /// @inheritdoc IProviderRegistry
    function meshToken() external view returns (IERC20) {
        return _mesh;
    }

    /// @inheritdoc IProviderRegistry
    function market() external view returns (address) {
        return _market;
    }

    /// @inheritdoc IProviderRegistry
    function parameter(Parameter which) public view returns (uint256) {
        if (which == Parameter.MinStake) return _config.minStake;
        if (which == Parameter.UnbondingPeriod) return _config.unbondingPeriod;
        return _config.jailPeriod;
    }

    /// @inheritdoc IProviderRegistry
    function parameterBounds(Parameter which) public pure returns (uint256 min, uint256 max) {
        if (which == Parameter.MinStake) return (1, type(uint96).max);
        if (which == Parameter.UnbondingPeriod) return (60, 365 days);
        return (0, 365 days); // JailPeriod
    }

    /// @inheritdoc IProviderRegistry
    function isRegistered(address provider) external view returns (bool) {
        return _providers[provider].gpuCount != 0;
    }

    /// @inheritdoc IProviderRegistry
    function idOf(address provider) external view returns (uint32) {
        return _providers[provider].id;
    }

    /// @inheritdoc IProviderRegistry
    function providerById(uint32 id) external view returns (address) {
        return _providerById[id];
    }

    /// @inheritdoc IProviderRegistry
    function providerCount() external view returns (uint256) {
        return _providerCount;
    }

    /// @inheritdoc IProviderRegistry
    function profileOf(address provider) public view returns (Profile memory) {
        ProviderRecord memory r = _providers[provider];
        return Profile(r.gpuCount, r.vramGB, r.gpuClass, r.region, r.energy, r.runtimes);
    }

    /// @inheritdoc IProviderRegistry
    function postedPrice(address provider, IERC20 token) external view returns (uint256) {
        return _prices[provider][token];
    }

    /// @inheritdoc IProviderRegistry
    function stakeOf(address provider) external view returns (uint256 active, uint256 unbonding, uint256 jailedUntil) {
        ProviderRecord memory r = _providers[provider];
        return (r.stake, _pools[provider].amount, r.jailedUntil);
    }

    /// @inheritdoc IProviderRegistry
    function isActive(address provider) public view returns (bool) {
        ProviderRecord memory r = _providers[provider];
        return _isActive(r);
    }

    /// @inheritdoc IProviderRegistry
    function countersOf(address provider) external view returns (Counters memory) {
        return _counters[provider];
    }

    /// @inheritdoc IProviderRegistry
    function stakeVotes(address provider) external view returns (uint256) {
        return _stakeVotesAt(provider, block.timestamp);
    }

    /// @inheritdoc IProviderRegistry
    function getPastStakeVotes(address provider, uint256 timepoint) external view returns (uint256) {
        if (timepoint >= block.timestamp) revert ProviderRegistryFutureLookup(timepoint, uint48(block.timestamp));
        return _stakeVotesAt(provider, timepoint);
    }

    /// @inheritdoc IProviderRegistry
    function unbondingEntry(address provider, uint256 entryId) external view returns (uint256 amount, uint256 releaseAt) {
        Unbonding memory entry = _entries[provider][entryId];
        UnbondingPool memory pool = _pools[provider];
        amount = entry.shares == 0 || entry.epoch != _queues[provider].epoch ? 0 : Math.min(
            Math.mulDiv(entry.shares, uint256(pool.amount) + 1, uint256(pool.shares) + 1),
            pool.amount
        );
        releaseAt = entry.releaseAt;
    }

    /// @inheritdoc IProviderRegistry
    function unbondingQueue(address provider) external view returns (uint256 head, uint256 next) {
        UnbondingQueue memory queue = _queues[provider];
        return (queue.head, queue.next);
    }

    /// @inheritdoc IProviderRegistry
    function slashedStake() external view returns (uint256) {
        return _totals.slashed;
    }

    /// @inheritdoc IProviderRegistry
    function totalStaked() external view returns (uint256) {
        return _totals.staked;
    }

    /// @inheritdoc IProviderRegistry
    function checkEligibility(
        address provider,
        IERC20 token,
        Requirements q,
        uint256 price,
        uint256 workUnits,
        bool checkPrice
    ) external view returns (Eligibility, uint32) {
        ProviderRecord memory r = _providers[provider];
        Eligibility e;
        if (r.gpuCount == 0) e = Eligibility.NotRegistered;
        else if (!_isActive(r)) e = Eligibility.NotActive;
        else if (q.runtime() >= 16 || r.runtimes & (1 << q.runtime()) == 0) e = Eligibility.Runtime;
        else if (r.vramGB < q.minVramGB()) e = Eligibility.Vram;
        else if (r.gpuCount < q.minGpuCount()) e = Eligibility.GpuCount;
        else if (q.gpuClass() != 0 && r.gpuClass != q.gpuClass()) e = Eligibility.GpuClass;
        else if (q.region() != bytes2(0) && r.region != q.region()) e = Eligibility.Region;
        else if (q.renewableOnly() && r.energy != Energy.Renewable) e = Eligibility.NotRenewable;
        else if (checkPrice && !_meetsPostedPrice(_postedPriceFor(provider, token, q.commons()), price, workUnits)) {
            e = Eligibility.PriceBelowPosted;
        } else if (block.timestamp < _config.claimsPausedUntil) {
            e = Eligibility.ClaimsPaused;
        }
        return (e, r.id);
    }

    /// @inheritdoc IProviderRegistry
    function commonsPriceKey(IERC20 token) public pure returns (IERC20) {
        return IERC20(address(uint160(uint256(keccak256(abi.encode("meshwork.commons", token))))));
    }

    /// @inheritdoc IProviderRegistry
    function claimsPausedUntil() external view returns (uint256) {
        return _config.claimsPausedUntil;
    }

    /* INTERNAL */

    /// @dev A commons job uses the provider's commons price when it posted one, its usual price otherwise.
    function _postedPriceFor(address provider, IERC20 token, bool commons) private view returns (uint256 posted) {
        if (commons) posted = _prices[provider][commonsPriceKey(token)];
        if (posted == 0) posted = _prices[provider][token];
    }

    /// @dev A price of 0 means the provider does not take this token.
    function _meetsPostedPrice(uint256 posted, uint256 price, uint256 workUnits) private pure returns (bool) {
        return posted != 0 && posted * workUnits <= price;
    }

    function _isActive(ProviderRecord memory r) private view returns (bool) {
        return r.gpuCount != 0 && r.stake >= _config.minStake && block.timestamp >= r.jailedUntil;
    }

    function _writeProfile(address provider, Profile calldata p) private {
        if (p.gpuCount == 0) revert ProviderRegistryInvalidProfile("gpuCount");
        if (p.vramGB == 0) revert ProviderRegistryInvalidProfile("vramGB");
        if (p.runtimes == 0) revert ProviderRegistryInvalidProfile("runtimes");
        if (!_isValidRegion(p.region)) revert ProviderRegistryInvalidProfile("region");
        ProviderRecord storage r = _providers[provider];
        (r.gpuCount, r.vramGB, r.gpuClass, r.region, r.energy, r.runtimes) =
            (p.gpuCount, p.vramGB, p.gpuClass, p.region, p.energy, p.runtimes);
    }

    /// @dev 0x0000 (undisclosed) or two upper-case ASCII letters.
    function _isValidRegion(bytes2 region) private pure returns (bool) {
        if (region == bytes2(0)) return true;
        return _isUpper(region[0]) && _isUpper(region[1]);
    }

    function _isUpper(bytes1 c) private pure returns (bool) {
        return c >= 0x41 && c <= 0x5a;
    }

    function _postPrice(IERC20 token, uint256 pricePerUnit) private {
        if (address(token) == address(0)) revert ProviderRegistryZeroAddress();
        _prices[msg.sender][token] = pricePerUnit;
        emit PricePosted(msg.sender, token, pricePerUnit);
    }

    function _stake(address provider, uint256 amount) private {
        if (amount == 0) revert ProviderRegistryZeroAmount();
        if (provider == address(0)) revert ProviderRegistryZeroAddress();
        ProviderRecord storage record = _providers[provider];
        uint256 newStake = record.stake + amount;
        record.stake = newStake.toUint96();
        _recordStake(provider, newStake);
        _totals.staked += amount.toUint128();
        emit Staked(provider, msg.sender, amount, newStake);
        _mesh.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @dev Appends the provider's active stake now to its history (replacing one written in this block),
    /// after a 0 at the time of the first slash since the last record, if any: from that slash until now
    /// the stake was lowered without a record, so it votes nothing (a slash in a record's own second
    /// replaces that record). Keys never go back: that slash came at or after the last record.
    function _recordStake(address provider, uint256 activeStake) private {
        Checkpoints.Trace208 storage history = _stakeHistory[provider];
        Counters storage counters = _counters[provider];
        uint256 slashedAt = counters.unrecordedSlashAt;
        if (slashedAt != 0) {
            history.push(uint48(slashedAt), 0);
            counters.unrecordedSlashAt = 0;
        }
        history.push(uint48(block.timestamp), uint208(activeStake));
    }

    /// @dev The active stake recorded last at or before `timepoint`, or 0 if a slash not yet recorded came
    /// at or before `timepoint` (it came after the last record). A later slash leaves past values as they were.
    function _stakeVotesAt(address provider, uint256 timepoint) private view returns (uint256) {
        uint256 slashedAt = _counters[provider].unrecordedSlashAt;
        if (slashedAt != 0 && slashedAt <= timepoint) return 0;
        return _stakeHistory[provider].upperLookupRecent(timepoint.toUint48());
    }

    function _setParameter(Parameter which, uint256 value) private {
        (uint256 min, uint256 max) = parameterBounds(which);
        if (value < min || value > max) revert ProviderRegistryParameterOutOfBounds(which, value, min, max);
        uint256 old = parameter(which);
        if (which == Parameter.MinStake) _config.minStake = uint96(value);
        else if (which == Parameter.UnbondingPeriod) _config.unbondingPeriod = uint40(value);
        else _config.jailPeriod = uint40(value);
        emit ParameterSet(which, old, value);
    }
}
