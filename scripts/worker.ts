/**
 * meshwork-worker: the node operator's CLI (`npm run worker -- <command>`; docs/operator.md).
 *
 *   init       create an encrypted keystore, detect the hardware, write the config
 *   register   register the hardware profile on-chain
 *   stake      stake MESH (EIP-2612 permit)
 *   prices     post minimum prices per work unit (and save them in the config)
 *   start      run the daemon (logs, metrics, blob store)
 *   status     stake, balances and local jobs
 *   withdraw   withdraw earnings from the market
 *   unstake    start unbonding stake, or withdraw released stake
 *
 * The keystore password comes from the first line of the file MESHWORK_PASSWORD_FILE names, or from
 * MESHWORK_PASSWORD; both are removed from the environment at start. Every error is printed as one
 * line; the exit code is non-zero.
 */
import "./lib/quietWarnings.js";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statfsSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { text } from "node:stream/consumers";
import { Command, InvalidArgumentError, Option } from "commander";
import { FetchRequest, JsonRpcProvider, Wallet, formatUnits, parseUnits } from "ethers";
import pino from "pino";
import { DirectoryBlobStore } from "../sdk/src/blob.js";
import { Meshwork } from "../sdk/src/client.js";
import { loadAddressBook, type AddressBook } from "../sdk/src/addressBook.js";
import { MeshworkChainMismatchError, MeshworkConfigError, MeshworkError } from "../sdk/src/errors.js";
import { Energy, type Profile } from "../sdk/src/providers.js";
import { parseWorkerConfig, type WorkerConfig } from "../sdk/src/worker/config.js";
import { detectHardware } from "../sdk/src/worker/hardware.js";
import { detectRuntimes } from "../sdk/src/worker/runtimes/index.js";
import { loadWorkerConfig, openKeystore, startProviderNode } from "../sdk/src/worker/node.js";
import { WorkerState } from "../sdk/src/worker/state.js";
import type { CheatMode } from "../sdk/src/worker/worker.js";
import { redactUrl, runCli } from "./lib/cli.js";
import { password } from "./lib/password.js";
import { describeProfile, rejectionReasons } from "./lib/profile.js";
import { devnetNetwork } from "./lib/localnet.js";

const DEFAULT_CONFIG = join(".meshwork", "worker", "worker.json");

const providers: JsonRpcProvider[] = [];

async function connect(configPath: string): Promise<{ config: WorkerConfig; mw: Meshwork; wallet: Wallet; provider: JsonRpcProvider }> {
  const config = loadWorkerConfig(configPath);
  const provider = new JsonRpcProvider(config.rpcUrl, undefined, { staticNetwork: true, cacheTimeout: -1 });
  providers.push(provider);
  const wallet = (await openKeystore(config.keystore, password())).connect(provider);
  const mw = await Meshwork.connect({ runner: wallet, network: config.network, deploymentsDir: config.deploymentsDir });
  return { config, mw, wallet, provider };
}

/** Bytes in GiB, one decimal. */
function gib(bytes: number): string {
  return (bytes / 2 ** 30).toFixed(1);
}

/** A unix time (seconds) as an ISO date. */
function isoTime(seconds: bigint): string {
  return new Date(Number(seconds) * 1000).toISOString();
}

/** What `entries` (oldest first) hold at chain time `now`: how much is released, and the next release. */
function unbondingLine(entries: { amount: bigint; releaseAt: bigint }[], now: bigint): string {
  const released = entries.filter((e) => e.releaseAt <= now).reduce((sum, e) => sum + e.amount, 0n);
  const next = entries.find((e) => e.releaseAt > now);
  const parts: string[] = [];
  if (released > 0n) parts.push(`${formatUnits(released, 18)} MESH released (\`unstake --withdraw\` pays it)`);
  if (next) parts.push(`${formatUnits(next.amount, 18)} MESH released at ${isoTime(next.releaseAt)}`);
  return parts.join("; ") || "nothing";
}

/** How long `init` waits for the RPC to say which chain it is on. */
const CHAIN_CHECK_MS = 5_000;

/**
 * The chain id the JSON-RPC endpoint at `url` reports, or what went wrong asking (it did not answer
 * in time, or answered with an error): a warning for `init`, which may run before the RPC is up.
 * Asked through ethers' FetchRequest, which, as the worker does, takes credentials in the URL.
 */
async function chainAt(url: string): Promise<{ id?: bigint; problem?: string }> {
  const request = new FetchRequest(url);
  request.timeout = CHAIN_CHECK_MS;
  request.setHeader("content-type", "application/json");
  request.body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] });
  try {
    const response = await request.send();
    if (!response.ok()) return { problem: `answered HTTP ${response.statusCode} ${response.statusMessage}` };
    const answer = response.bodyJson as { result?: string; error?: { message?: string } };
    if (typeof answer?.result === "string") return { id: BigInt(answer.result) };
    return { problem: `answered ${answer?.error?.message ? `"${answer.error.message}"` : "no chain id"}` };
  } catch (error) {
    const code = (error as { code?: string }).code;
    return { problem: code === "TIMEOUT" ? `did not answer within ${CHAIN_CHECK_MS / 1000} s` : `could not be reached (${firstLineOf(error)})` };
  }
}

function firstLineOf(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0].slice(0, 120);
}

/**
 * The wallet of a private key given as 32 bytes of hex (`0x` optional; surrounding whitespace, a file's
 * final newline, ignored). The error says where the key came from (`from`) and never quotes it: ethers'
 * own error would print the whole value.
 */
function walletOfKey(key: string, from: string): Wallet {
  const hex = key.trim();
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(hex)) throw new MeshworkError(`the private key ${from} is not 32 bytes of hex (64 hex digits, optionally 0x-prefixed)`);
  try {
    return new Wallet(hex.startsWith("0x") ? hex : `0x${hex}`);
  } catch {
    throw new MeshworkError(`the private key ${from} is not a valid secp256k1 private key`); // 0, or not under the curve's order
  }
}

/** The key `init` imports: from `--key-file`, stdin (`--key -`) or `--key <hex>`; none: a new one is generated. */
async function importedKey(opts: { key?: string; keyFile?: string }): Promise<Wallet | undefined> {
  if (opts.keyFile !== undefined) {
    let key: string;
    try {
      key = readFileSync(opts.keyFile, "utf8");
    } catch (cause) {
      throw new MeshworkConfigError(`cannot read the key file ${opts.keyFile}`, { cause, details: { path: opts.keyFile } });
    }
    return walletOfKey(key, `in ${opts.keyFile}`);
  }
  if (opts.key === "-") {
    if (process.stdin.isTTY) throw new MeshworkError("--key - reads the key from a pipe, not a terminal: `init --key - < key.txt`, or use --key-file <path>");
    return walletOfKey(await text(process.stdin), "read from stdin");
  }
  return opts.key === undefined ? undefined : walletOfKey(opts.key, "given with --key");
}

function amount(value: string): string {
  if (!/^\d+(\.\d+)?$/.test(value)) throw new InvalidArgumentError("expected a positive decimal amount, e.g. 12.5");
  if (!/[1-9]/.test(value)) throw new InvalidArgumentError(`the amount must be more than 0 (got ${value})`);
  return value;
}

/** A decimal amount (checked by {@link amount}) in the token's smallest units; `what` names it in the error. */
function unitsOf(value: string, places: number, symbol: string, what = `amount ${value}`): bigint {
  if ((value.split(".")[1] ?? "").length > places) throw new MeshworkError(`bad ${what}: ${symbol} has ${places} decimal places`);
  return parseUnits(value, places);
}

const program = new Command()
  .name("meshwork-worker")
  .description("Run a Meshwork provider node: stake, price and rent out your GPU")
  .option("-c, --config <path>", "worker config file", DEFAULT_CONFIG)
  .showHelpAfterError();

program
  .command("init")
  .description("create an encrypted keystore (new key, or --key-file), detect the hardware and write the config")
  .option("--rpc <url>", "JSON-RPC endpoint (default: the local devnet's, or http://127.0.0.1:8545)")
  .option("--network <name>", "address book in deployments/", "localhost")
  .option("--data <dir>", "data directory (database, blobs)")
  .option("--key <hex>", "import this private key instead of generating one; `-` reads it from stdin (a key given here shows in `ps` and the shell's history: prefer --key-file or -)")
  .addOption(new Option("--key-file <path>", "import the private key (hex) held in this file instead of generating one").conflicts("key"))
  .option("--blob-port <port>", "port of the local blob store", "8788")
  .option("--metrics-port <port>", "port of the Prometheus endpoint (0 = off)", "9464")
  .option("--blob-source <url...>", "blob stores to fetch consumers' inputs from (default on localhost: the devnet's)")
  .option("--deployments <dir>", "directory of the address books (default: ./deployments)")
  .option("--poll-ms <ms>", "how often to poll the chain", "2000")
  .option("--force", "overwrite an existing config and keystore")
  .action(async (opts) => {
    const configPath = resolve(program.opts().config);
    if (existsSync(configPath) && !opts.force) throw new MeshworkError(`${configPath} exists; pass --force to replace it`);
    const dataDir = resolve(opts.data ?? dirname(configPath));
    const wallet = (await importedKey(opts)) ?? Wallet.createRandom();
    const keystore = join(dataDir, "keystore.json");
    const hardware = await detectHardware();
    // On localhost, the network `npm start -- --keep` leaves up: its RPC, blob store and address book.
    const devnet = opts.network === "localhost" ? devnetNetwork() : {};
    const config = parseWorkerConfig({
      rpcUrl: opts.rpc ?? devnet.rpcUrl ?? "http://127.0.0.1:8545",
      network: opts.network,
      keystore,
      dataDir,
      blobPort: Number(opts.blobPort),
      metricsPort: Number(opts.metricsPort),
      blobSources: opts.blobSource ?? (devnet.blobs ? [devnet.blobs] : []),
      deploymentsDir: opts.deployments ? resolve(opts.deployments) : devnet.deploymentsDir,
      pollMs: Number(opts.pollMs),
    });
    // The chain and its address book, before anything is written: a config for a chain without one, or
    // an RPC on another chain, would only fail at `register`.
    let book: AddressBook;
    try {
      book = loadAddressBook(config.network, config.deploymentsDir);
    } catch (error) {
      if (!(error instanceof MeshworkError) || !error.shortMessage.startsWith("no address book")) throw error; // one that is there but bad says so itself
      const hint = config.network === "localhost" ? "start the local network first (`npm start -- --keep`)" : "pass --deployments <dir> where it is";
      throw new MeshworkError(`${error.shortMessage} (${error.details.path ?? config.network}): ${hint}`, { cause: error });
    }
    const chain = await chainAt(config.rpcUrl);
    if (chain.id !== undefined && chain.id !== BigInt(book.chainId)) {
      throw new MeshworkChainMismatchError(BigInt(book.chainId), chain.id, { details: { network: book.network } });
    }
    const encrypted = await wallet.encrypt(password());
    // The directories init creates only its user may enter (one that is there keeps its mode), and the
    // config, whose rpcUrl often holds an API key, only its user may read, as the keystore.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // Only now, with everything checked: the key that holds a stake and earnings is never lost to a
    // re-init, it is kept beside.
    let kept: string | undefined;
    if (existsSync(keystore)) {
      kept = `${keystore}.${new Date().toISOString().replace(/[:.]/g, "-")}.bak`;
      renameSync(keystore, kept);
    }
    writeFileSync(keystore, encrypted, { mode: 0o600 });
    mkdirSync(dirname(configPath), { recursive: true, mode: 0o700 });
    writeFileSync(configPath, JSON.stringify({ ...config, hardware }, (_, v) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n", { mode: 0o600 });
    chmodSync(configPath, 0o600); // one replaced with --force too
    console.log(`address   ${wallet.address}`);
    console.log(`keystore  ${keystore} (encrypted with the keystore password; back it up: it holds your stake and earnings)`);
    if (kept) console.log(`kept      the previous keystore as ${kept} (its address still holds whatever it staked and earned)`);
    console.log(`hardware  ${hardware.source}: ${hardware.gpuCount} GPU(s), ${hardware.vramGB} GB each; ${hardware.cpu.cores} CPU cores`);
    const reached = chain.id === undefined ? `${chain.problem}: check --rpc before \`register\`` : `chain id ${chain.id}`;
    console.log(`chain     ${redactUrl(config.rpcUrl)} (${config.network}, ${reached}); blobs from ${config.blobSources.map(redactUrl).join(", ") || "no source: pass --blob-source <url> where consumers put specs and inputs"}`);
    // For the operator's eye only: the keystore and config are written, so a filesystem that cannot
    // say its free space (statfs unsupported there, say) must not fail `init` now.
    let freeBytes: number | undefined;
    try {
      const free = statfsSync(dataDir);
      freeBytes = free.bavail * free.bsize;
    } catch {
      freeBytes = undefined;
    }
    const budget = config.maxBlobDirBytes;
    const disk = freeBytes === undefined ? "the disk's free space unknown" : `the disk's ${gib(freeBytes)} GiB free`;
    const roomy = freeBytes !== undefined && budget > freeBytes / 2 ? "over half of that: lower maxBlobDirBytes in the config" : "maxBlobDirBytes";
    const blobLine = budget === 0 ? `no budget (maxBlobDirBytes 0): it may fill ${disk}` : `budget ${gib(budget)} GiB of ${disk} (${roomy})`;
    console.log(`blobs     ${join(dataDir, "blobs")}, ${blobLine}`);
    console.log(`config    ${configPath}`);
    const fund = config.network === "localhost" ? ` (on the local devnet: \`npm run meshwork -- fund ${wallet.address}\`)` : "";
    console.log(`next: fund this address with gas, MESH to stake and the payment token for collateral${fund}, then \`register\`, \`stake\`, \`prices\`, \`start\``);
  });

program
  .command("register")
  .description("register this node's hardware profile on-chain, or update it (options left out keep their registered values)")
  .option("--region <code>", "ISO-3166 alpha-2 region, e.g. DE (required to register; on update, default: the registered one)", (v) => {
    if (!/^[A-Z]{2}$/.test(v)) throw new InvalidArgumentError("two capital letters, e.g. DE");
    return v;
  })
  .option("--energy <kind>", "grid | renewable | unknown (default: unknown; on update, the registered one)")
  .option(
    "--gpu-class <id>",
    "GPU class id (0-65535) from the table governance publishes: a job that asks for a class is offered only to nodes of exactly that id; " +
      "0 = unclassified, offered only jobs that ask for no class (default: 0; on update, the registered one)",
    (v) => {
      if (!/^\d+$/.test(v) || Number(v) > 0xffff) throw new InvalidArgumentError("an integer from 0 to 65535 (the registry's uint16), e.g. 3");
      return Number(v);
    },
  )
  .option("--metadata <uri>", "metadata URI (emitted in the event only, not kept on-chain)", "")
  .action(async (opts) => {
    const { config, mw, wallet } = await connect(program.opts().config);
    const raw = JSON.parse(readFileSync(program.opts().config, "utf8"));
    const hw = raw.hardware ?? (await detectHardware());
    const energies: Record<string, Energy> = { grid: Energy.Grid, renewable: Energy.Renewable, unknown: Energy.Unknown };
    if (opts.energy !== undefined && energies[opts.energy] === undefined) throw new MeshworkError(`--energy must be grid, renewable or unknown (got ${opts.energy})`);
    // An update starts from what is registered: an option left out keeps its value.
    const registered = await mw.context.contracts.registry.isRegistered(wallet.address);
    const current = registered ? (await mw.providers.get(wallet.address)).profile : undefined;
    if (!current && opts.region === undefined) throw new MeshworkError("register: --region <code> is required to register (e.g. --region DE)");
    const kept = current ? [["region", opts.region], ["energy", opts.energy], ["GPU class", opts.gpuClass]].filter(([, v]) => v === undefined).map(([name]) => name) : [];
    const profile: Profile = {
      gpuCount: Math.max(1, hw.gpuCount),
      vramGB: Math.max(1, hw.vramGB),
      gpuClass: opts.gpuClass ?? current?.gpuClass ?? 0,
      region: opts.region ?? current!.region,
      energy: opts.energy !== undefined ? energies[opts.energy] : (current?.energy ?? Energy.Unknown),
      // What this machine runs, of the config's runtimes (all by default): what the daemon will offer.
      runtimes: (await detectRuntimes(config.runtimes, { onnx: config.onnx })).map((r) => r.id),
    };
    if (profile.runtimes.length === 0) throw new MeshworkError("no runtime of the config's `runtimes` is available on this machine");
    if (registered) await mw.providers.updateProfile(profile, opts.metadata);
    else await mw.providers.register(profile, opts.metadata);
    console.log(`${registered ? "updated" : "registered"} ${wallet.address}: ${describeProfile(profile)}${kept.length ? ` (kept as registered: ${kept.join(", ")})` : ""}`);
    if (hw.gpuCount === 0) {
      console.log("note: no GPU detected, so the profile says 1 GPU with 1 GB, the least a profile may say: jobs that ask for more GPUs or memory are not offered to this node");
    }
  });

program
  .command("stake <amount>")
  .description("stake MESH (decimal amount) with an EIP-2612 permit")
  .action(async (value: string) => {
    const { mw, wallet } = await connect(program.opts().config);
    const wanted = unitsOf(amount(value), 18, "MESH");
    const held = await mw.context.call("balanceOf", () => mw.context.contracts.mesh.balanceOf(wallet.address));
    if (held < wanted) throw new MeshworkError(`stake ${value} MESH: ${wallet.address} holds ${formatUnits(held, 18)} MESH; send it MESH first`);
    await mw.providers.stake(wanted);
    const { active } = (await mw.providers.get(wallet.address)).stake;
    console.log(`staked ${value} MESH; active stake ${formatUnits(active, 18)} MESH`);
  });

program
  .command("prices <prices...>")
  .description("post minimum prices per work unit, e.g. `prices tUSD=1.5` (saved in the config)")
  .option("--commons", "post the (discounted) price for compute-commons jobs instead")
  .action(async (pairs: string[], opts) => {
    const configPath = program.opts().config;
    const { mw } = await connect(configPath);
    const raw = JSON.parse(readFileSync(configPath, "utf8"));
    raw.prices ??= {};
    // Every price is checked before any is posted: a typo posts nothing.
    const parsed: { symbol: string; text: string; units: bigint }[] = [];
    for (const pair of pairs) {
      const m = /^([A-Za-z0-9]+)=(\d+(?:\.\d+)?)$/.exec(pair);
      if (!m) throw new MeshworkError(`bad price "${pair}": expected TOKEN=decimal, e.g. tUSD=1.5`);
      parsed.push({ symbol: m[1], text: m[2], units: unitsOf(m[2], await mw.balances.decimals(m[1]), m[1], `price "${pair}"`) });
    }
    for (const { symbol, text, units } of parsed) {
      await mw.providers.postPrice(symbol, units, { commons: Boolean(opts.commons) });
      if (!opts.commons) {
        // What is on-chain is what the daemon asks; 0 on-chain means the token is not taken at all.
        if (units === 0n) delete raw.prices[symbol];
        else raw.prices[symbol] = units.toString();
        writeFileSync(configPath, JSON.stringify(raw, null, 2) + "\n");
      }
      if (units > 0n) console.log(`posted ${opts.commons ? "commons " : ""}price ${text} ${symbol} per work unit`);
      else if (opts.commons) console.log(`posted commons price 0: ${symbol} compute-commons jobs now pay this node's usual ${symbol} price`);
      else console.log(`posted price 0: this node no longer takes ${symbol} jobs`);
    }
  });

program
  .command("start")
  .description("run the worker daemon until Ctrl-C")
  .addOption(new Option("--cheat <mode>", "TEST ONLY: fabricate | copy | late").choices(["fabricate", "copy", "late"]).hideHelp())
  .action(async (opts) => {
    const config = loadWorkerConfig(program.opts().config);
    const logger = pino({ name: "meshwork-worker" });
    const node = await startProviderNode(config, password(), { logger, cheat: opts.cheat as CheatMode | undefined });
    const stop = async () => {
      await node.stop();
      process.exit(0);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });

program
  .command("status")
  .description("stake, balances, reputation and local jobs")
  .action(async () => {
    const { config, mw, wallet } = await connect(program.opts().config);
    const me = await mw.providers.get(wallet.address);
    console.log(`provider  ${wallet.address} (${me.active ? "active" : "inactive"})`);
    console.log(`profile   ${me.profile.gpuCount === 0 ? "not registered (`register --region <code>` registers it)" : describeProfile(me.profile)}`);
    const posted: string[] = [];
    for (const [symbol, price] of Object.entries(me.prices)) {
      const places = await mw.balances.decimals(symbol);
      const commons = me.commonsPrices[symbol] ?? 0n;
      if (price > 0n) posted.push(`${formatUnits(price, places)} ${symbol}/unit${commons > 0n ? ` (commons ${formatUnits(commons, places)})` : ""}`);
    }
    console.log(`prices    ${posted.join(", ") || "none posted (`prices tUSD=1.5` posts one)"}`);
    console.log(`stake     ${formatUnits(me.stake.active, 18)} MESH active, ${formatUnits(me.stake.unbonding, 18)} unbonding`);
    if (me.stake.unbonding > 0n) {
      const [entries, { time }] = await Promise.all([mw.providers.unbonding(wallet.address), mw.context.latestBlock("status")]);
      console.log(`unbonding ${unbondingLine(entries, time)}`);
    }
    for (const b of await mw.balances.all(wallet.address)) {
      const places = await mw.balances.decimals(b.symbol);
      console.log(`balance   ${b.symbol}: ${formatUnits(b.market, places)} in the market, ${formatUnits(b.wallet, places)} in the wallet`);
    }
    console.log(`reputation reliability ${me.reputation.reliability.toFixed(3)}, audits passed ${me.reputation.auditPassRate.toFixed(3)}`);
    const blobs = await new DirectoryBlobStore(join(config.dataDir, "blobs")).usage();
    const budget = config.maxBlobDirBytes === 0 ? "no budget" : `budget ${gib(config.maxBlobDirBytes)} GiB`;
    const keep =
      config.keepBlobsSec > 0 ? `removed once unused for ${config.keepBlobsSec / 3600} h` : config.maxBlobDirBytes > 0 ? "removed only to make room" : "kept for good";
    console.log(`blobs     ${blobs.blobs} in ${join(config.dataDir, "blobs")}, ${(blobs.bytes / 2 ** 20).toFixed(1)} MiB (${budget}; ${keep})`);
    const dbPath = join(config.dataDir, "worker.db");
    if (existsSync(dbPath)) {
      const state = new WorkerState(dbPath);
      const roles: Record<string, string> = { none: "not taken", provider: "as provider", auditor: "as auditor", tieBreaker: "as tie-breaker" };
      const rejected = state.inPhase("rejected");
      for (const r of state.summary()) {
        const why = r.phase === "rejected" ? ` (${rejectionReasons(rejected.filter((j) => j.role === r.role).map((j) => j.note))})` : "";
        console.log(`jobs      ${roles[r.role] ?? r.role}, ${r.phase}: ${r.count}${why}`);
      }
      state.close();
    }
  });

program
  .command("withdraw [token] [amount]")
  .description("withdraw earnings from the market (everything by default)")
  .action(async (token: string | undefined, value: string | undefined) => {
    const { mw, wallet } = await connect(program.opts().config);
    const symbols = token ? [token] : Object.keys(mw.book.contracts.paymentTokens);
    let withdrew = false;
    for (const symbol of symbols) {
      const balance = await mw.balances.of(symbol, wallet.address);
      const places = await mw.balances.decimals(symbol);
      const wanted = value ? unitsOf(amount(value), places, symbol) : balance;
      if (wanted > balance) throw new MeshworkError(`withdraw ${value} ${symbol}: this node has ${formatUnits(balance, places)} ${symbol} in the market`);
      if (wanted === 0n) continue;
      await mw.balances.withdraw(symbol, wanted);
      console.log(`withdrew ${formatUnits(wanted, places)} ${symbol}`);
      withdrew = true;
    }
    if (!withdrew) console.log(`nothing to withdraw: this node has no ${symbols.join(" or ")} in the market`);
  });

program
  .command("unstake [amount]")
  .description("start unbonding MESH (decimal amount), or --withdraw released stake")
  .option("--withdraw", "withdraw stake whose unbonding period has passed")
  .action(async (value: string | undefined, opts) => {
    const { mw, wallet } = await connect(program.opts().config);
    if (opts.withdraw) {
      if (value) throw new MeshworkError("give an amount to unstake, or --withdraw, not both");
      // Checked here so that an early call says when, rather than sending a transaction that reverts.
      const entries = await mw.providers.unbonding(wallet.address);
      if (entries.length === 0) throw new MeshworkError("unstake --withdraw: no stake is unbonding (`unstake <amount>` starts unbonding)");
      const { time } = await mw.context.latestBlock("unstake --withdraw");
      if (entries[0].releaseAt > time) {
        throw new MeshworkError(`unstake --withdraw: nothing released yet; the first ${formatUnits(entries[0].amount, 18)} MESH is released at ${isoTime(entries[0].releaseAt)}`);
      }
      const receipt = await mw.providers.withdrawStake();
      const { registry } = mw.context.contracts;
      const paid = receipt.logs.map((log) => registry.interface.parseLog(log)).find((e) => e?.name === "StakeWithdrawn");
      console.log(`withdrew ${formatUnits(paid?.args.amount ?? 0n, 18)} MESH of released stake`);
      const left = await mw.providers.unbonding(wallet.address);
      if (left.length) console.log(`still unbonding: ${unbondingLine(left, time)}`);
      return;
    }
    if (!value) throw new MeshworkError("give an amount to unstake, or --withdraw");
    const wanted = unitsOf(amount(value), 18, "MESH");
    const { active } = (await mw.providers.get(wallet.address)).stake;
    if (wanted > active) throw new MeshworkError(`unstake ${value} MESH: ${formatUnits(active, 18)} MESH is staked and not unbonding`);
    const { releaseAt } = await mw.providers.requestUnstake(wanted);
    console.log(`unbonding ${value} MESH until ${isoTime(releaseAt)} (slashable until then)`);
    const me = await mw.providers.get(wallet.address);
    if (!me.active) console.log(`note: active stake is now ${formatUnits(me.stake.active, 18)} MESH, under the minimum: this node takes no new jobs`);
  });

await runCli(program, () => {
  if (program.args[0] !== "start") for (const p of providers) p.destroy();
});
