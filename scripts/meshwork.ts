/**
 * meshwork: the consumer's and token holder's CLI (`npm run meshwork -- <command>`).
 *
 *   job submit|status|result|cancel|challenge     run and follow jobs
 *   gov delegate|propose|vote|queue|execute|list  governance (propose: parameters and dispute verdicts)
 *   gov escalations                               disputes only governance can decide, with evidence
 *   providers list                                providers and the price board
 *   stats                                         queue times, price index, utilisation, slashes
 *   fund <address>                                local devnet: gas, MESH and tUSD for a new node
 *
 * The network is `--network` (default localhost: the network `npm start -- --keep` leaves up, found
 * through .meshwork/devnet/network.json), its RPC `--rpc` or MESHWORK_RPC_URL, the blob store `--blobs`
 * or MESHWORK_BLOBS, the key `--keystore` or MESHWORK_KEYSTORE (an encrypted keystore, such as a
 * worker's: its password from MESHWORK_PASSWORD_FILE or MESHWORK_PASSWORD), or `--key` or MESHWORK_KEY
 * (on localhost, `--account <n>` picks one of the node's development accounts). Every error is printed
 * as one line and the exit code is non-zero.
 */
import "./lib/quietWarnings.js";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { Contract, JsonRpcProvider, Wallet, formatUnits, isAddress, parseUnits, type ContractRunner, type ContractTransactionResponse } from "ethers";
import { HttpBlobStore, digestOf } from "../sdk/src/blob.js";
import { Meshwork } from "../sdk/src/client.js";
import { MeshworkError } from "../sdk/src/errors.js";
import { openKeystore } from "../sdk/src/worker/node.js";
import { MARKET_PARAMETERS, REGISTRY_PARAMETERS, type MarketParameter, type ProposalAction, type RegistryParameter, type Support } from "../sdk/src/governance.js";
import { VERDICTS, type Verdict } from "../sdk/src/stats.js";
import { Energy } from "../sdk/src/providers.js";
import { runCli } from "./lib/cli.js";
import { password } from "./lib/password.js";
import { describeEscalation } from "./lib/escalations.js";
import { devKey, devnetNetwork } from "./lib/localnet.js";

interface Globals {
  network: string;
  rpc?: string;
  blobs?: string;
  key?: string;
  keystore?: string;
  account?: string;
  deployments?: string;
}

const providers: JsonRpcProvider[] = [];

async function connect(g: Globals, options: { signer: boolean }): Promise<Meshwork> {
  const local = g.network === "localhost" ? devnetNetwork() : {};
  const rpcUrl = g.rpc ?? process.env.MESHWORK_RPC_URL ?? local.rpcUrl ?? "http://127.0.0.1:8545";
  const provider = new JsonRpcProvider(rpcUrl, undefined, { staticNetwork: true, cacheTimeout: -1, pollingInterval: 500 });
  providers.push(provider);
  let runner: ContractRunner = provider;
  const keystore = g.keystore ?? (g.key ? undefined : process.env.MESHWORK_KEYSTORE);
  const key = g.key ?? (keystore ? undefined : process.env.MESHWORK_KEY) ?? (g.account !== undefined && g.network === "localhost" ? devKey(Number(g.account)) : undefined);
  if (keystore) runner = (await openKeystore(keystore, password())).connect(provider);
  else if (key) runner = new Wallet(key, provider);
  else if (options.signer) throw new MeshworkError("this command sends a transaction: pass --keystore (or MESHWORK_KEYSTORE), --key (or MESHWORK_KEY), or --account <n> on localhost");
  const blobs = g.blobs ?? process.env.MESHWORK_BLOBS ?? local.blobs;
  return Meshwork.connect({
    runner,
    network: g.network,
    deploymentsDir: g.deployments ?? process.env.MESHWORK_DEPLOYMENTS_DIR ?? local.deploymentsDir,
    blobStore: blobs ? new HttpBlobStore(blobs) : undefined,
  });
}

function readFile(path: string): Uint8Array {
  if (!existsSync(path)) throw new MeshworkError(`no such file: ${path}`);
  return new Uint8Array(readFileSync(path));
}

function decimal(value: string): string {
  if (!/^\d+(\.\d+)?$/.test(value)) throw new InvalidArgumentError("expected a positive decimal amount, e.g. 12.5");
  return value;
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a non-negative integer");
  return n;
}

function jobId(value: string): string {
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) throw new InvalidArgumentError("expected a job id: 0x and 64 hex digits");
  return value;
}

const program = new Command()
  .name("meshwork")
  .description("Meshwork from the command line: jobs, governance, providers and statistics")
  .option("--network <name>", "address book in deployments/", "localhost")
  .option("--rpc <url>", "JSON-RPC endpoint (default: MESHWORK_RPC_URL, the local devnet, or 127.0.0.1:8545)")
  .option("--blobs <url>", "blob store (default: MESHWORK_BLOBS or the local devnet's)")
  .option("--key <hex>", "private key that signs (default: MESHWORK_KEY; shows in `ps` and the shell's history: prefer --keystore)")
  .addOption(new Option("--keystore <path>", "encrypted keystore that signs, e.g. a worker's (default: MESHWORK_KEYSTORE; password: MESHWORK_PASSWORD_FILE or MESHWORK_PASSWORD)").conflicts("key"))
  .option("--account <n>", "on localhost: sign with development account n")
  .option("--deployments <dir>", "directory of the address books")
  .showHelpAfterError();
const g = () => program.opts<Globals>();

/* JOBS */

const job = program.command("job").description("submit and follow jobs");

job
  .command("submit")
  .description("upload a program or model and inputs, then post the job")
  .option("--spec <file>", "a complete job spec (JSON) whose blobs are already in the store")
  .option("--runtime <name>", "int-kernel | onnx", "int-kernel")
  .option("--program <file>", "the program (int-kernel) or model (onnx) file")
  .option("--inputs <files...>", "one input file per chunk")
  .option("--encoding <enc>", "bytes | int32-le | fixed-point", "int32-le")
  .option("--scale-bits <n>", "fixed-point scale (2^-n)", integer)
  .requiredOption("--price <amount>", "total price, in the token's units (e.g. 20)", decimal)
  .option("--units <n>", "work units", integer, 10)
  .option("--token <symbol>", "payment token", "tUSD")
  .option("--region <code>", "only providers in this region")
  .option("--renewable", "only providers on renewable energy")
  .option("--audit-chunks <n>", "chunks an audit re-runs", integer, 2)
  .option("--wait", "wait until the job settles")
  .action(async (o) => {
    const mw = await connect(g(), { signer: true });
    const store = mw.context.blobStore;
    if (!store) throw new MeshworkError("job submit needs a blob store: pass --blobs");
    let spec: unknown;
    if (o.spec) {
      try {
        spec = JSON.parse(new TextDecoder().decode(readFile(o.spec)));
      } catch (e) {
        throw e instanceof MeshworkError ? e : new MeshworkError(`${o.spec} is not JSON`);
      }
    } else {
      if (!o.program || !o.inputs) throw new MeshworkError("pass --spec, or --program and --inputs");
      const exe = readFile(o.program);
      const chunks = (o.inputs as string[]).map(readFile);
      await store.put(exe);
      const { inputs, chunking } = await mw.jobs.upload(chunks);
      const output = o.encoding === "fixed-point" ? { encoding: "fixed-point", scaleBits: o.scaleBits ?? 16, canonicalisation: "tolerance" } : { encoding: o.encoding, canonicalisation: "exact" };
      spec = { version: 1, runtime: o.runtime, [o.runtime === "onnx" ? "model" : "program"]: { digest: digestOf(exe), size: exe.length }, inputs, chunking, output };
    }
    const symbol = o.token as string;
    const price = parseUnits(o.price, await mw.balances.decimals(symbol));
    const parsed = spec as { chunking?: { chunks?: number }; runtime?: string };
    const handle = await mw.jobs.create(spec, {
      token: symbol,
      price,
      workUnits: BigInt(o.units),
      requirements: { region: o.region ?? "", renewableOnly: Boolean(o.renewable), runtime: parsed.runtime === "onnx" ? 1 : 0 },
      verification: { chunks: parsed.chunking?.chunks ?? 1, auditChunks: Math.min(o.auditChunks, parsed.chunking?.chunks ?? 1) },
    });
    console.log(`submitted job ${handle.jobId} (${o.price} ${symbol})`);
    if (o.wait) {
      handle.on("*", (e) => console.log(`  ${e.type}${"provider" in e ? ` by ${e.provider}` : ""}`));
      const settled = await handle.wait({ enforceDeadlines: true });
      console.log(`settled by ${settled.provider}; result ${settled.outputURI}`);
    }
  });

job
  .command("status <jobId>")
  .description("a job's state and its lifecycle so far")
  .action(async (id: string) => {
    const mw = await connect(g(), { signer: false });
    const handle = await mw.jobs.get(jobId(id));
    await handle.refresh();
    console.log(`job ${id}: ${await handle.state()}`);
    for (const e of handle.events) console.log(`  block ${e.blockNumber}: ${e.type}${"provider" in e ? ` by ${e.provider}` : ""}${e.type === "failed" ? ` (${e.reason})` : ""}`);
  });

job
  .command("result <jobId>")
  .description("download the result, verify every chunk against the committed root, write it to a folder")
  .requiredOption("--out <dir>", "folder for chunk-<i>.bin and result.bin")
  .action(async (id: string, o) => {
    const mw = await connect(g(), { signer: false });
    const handle = await mw.jobs.get(jobId(id));
    const { chunks, bytes } = await handle.result();
    mkdirSync(o.out, { recursive: true });
    chunks.forEach((c, i) => writeFileSync(join(o.out, `chunk-${i}.bin`), c));
    writeFileSync(join(o.out, "result.bin"), bytes);
    console.log(`verified ${chunks.length} chunks (${bytes.length} bytes) → ${resolve(o.out)}`);
  });

job
  .command("cancel <jobId>")
  .description("withdraw an unclaimed job; the price returns to your market balance")
  .action(async (id: string) => {
    const mw = await connect(g(), { signer: true });
    await (await mw.jobs.get(jobId(id))).cancel();
    console.log(`cancelled job ${id}`);
  });

job
  .command("challenge <jobId>")
  .description("challenge a revealed result in its window (posts a bond)")
  .option("--chunk <i>", "a chunk the audit must include", integer)
  .action(async (id: string, o) => {
    const mw = await connect(g(), { signer: true });
    await (await mw.jobs.get(jobId(id))).challenge({ chunk: o.chunk });
    console.log(`challenged job ${id}${o.chunk === undefined ? "" : ` (chunk ${o.chunk})`}`);
  });

/* GOVERNANCE */

const gov = program.command("gov").description("governance: delegate, propose, vote, queue, execute, list, escalations");

gov
  .command("delegate [to]")
  .description("delegate your MESH votes (to yourself by default)")
  .action(async (to?: string) => {
    const mw = await connect(g(), { signer: true });
    await mw.governance.delegate(to);
    console.log(`delegated; voting power ${formatUnits(await mw.governance.votingPower(), 18)} MESH`);
  });

gov
  .command("propose")
  .description("propose parameter changes (--set market.FeeBps=200 --set registry.MinStake=2000e18) and verdicts on escalated disputes (--verdict 0xJobId=ProviderFraud)")
  .option("--set <change...>", "contract.Parameter=value")
  .option("--verdict <decision>", `jobId=${VERDICTS.join("|")} for a dispute listed by \`gov escalations\` (one, alone)`)
  .requiredOption("--description <text>", "what and why")
  .action(async (o) => {
    if (!o.set && !o.verdict) throw new MeshworkError("nothing to propose: give --set and/or --verdict");
    const mw = await connect(g(), { signer: true });
    const actions: ProposalAction[] = ((o.set ?? []) as string[]).map((change) => {
      const m = /^(market|registry)\.([A-Za-z]+)=(\d+)(?:e(\d+))?$/.exec(change);
      if (!m) throw new MeshworkError(`bad change "${change}": expected market.Parameter=value or registry.Parameter=value`);
      const value = BigInt(m[3]) * 10n ** BigInt(m[4] ?? 0);
      const known: readonly string[] = m[1] === "market" ? MARKET_PARAMETERS : REGISTRY_PARAMETERS;
      if (!known.includes(m[2])) throw new MeshworkError(`unknown ${m[1]} parameter ${m[2]}; known: ${known.join(", ")}`);
      return m[1] === "market"
        ? mw.governance.setParameter("market", m[2] as MarketParameter, value)
        : mw.governance.setParameter("registry", m[2] as RegistryParameter, value);
    });
    if (o.verdict) {
      // The timelock executes a proposal's actions all or nothing, and a verdict reverts once its dispute
      // has ended: each verdict goes in a proposal of its own, one that can execute before the deadline.
      if (o.set) throw new MeshworkError("propose one --verdict alone: a verdict on a dispute already ended (decided, or past its deadline) would make the whole proposal fail");
      const decision = o.verdict as string;
      const m = /^(0x[0-9a-fA-F]{64})=([A-Za-z]+)$/.exec(decision);
      if (!m || !VERDICTS.includes(m[2] as Verdict)) throw new MeshworkError(`bad verdict "${decision}": expected 0xJobId=${VERDICTS.join("|")}`);
      const escalation = (await mw.governance.escalations()).find((e) => e.jobId.toLowerCase() === m[1].toLowerCase());
      if (!escalation) throw new MeshworkError(`job ${m[1]} is not an escalated dispute now (see gov escalations)`);
      const latency = await mw.governance.latency();
      const now = BigInt((await mw.context.provider.getBlock("latest"))?.timestamp ?? 0);
      if (now + latency > escalation.deadline) {
        throw new MeshworkError(`too late: a proposal made now executes in ${latency} s at the earliest, after the dispute's deadline (${new Date(Number(escalation.deadline) * 1000).toISOString()}), when it ends as no fault`);
      }
      actions.push(mw.governance.resolveEscalation(escalation.job, m[2] as Verdict));
    }
    const p = await mw.governance.propose(actions, o.description);
    console.log(`proposal ${p.proposalId}`);
  });

function proposalId(id: string): bigint {
  if (!/^\d+$/.test(id)) throw new MeshworkError(`bad proposal id "${id}": expected a decimal number`);
  return BigInt(id);
}

/** One proposal's actions and description, from its event (no other proposal's tallies are read). */
async function proposalById(mw: Meshwork, id: string) {
  return mw.governance.get(proposalId(id));
}

gov
  .command("vote <proposalId> <support>")
  .description("vote for | against | abstain")
  .option("--reason <text>", "a public reason")
  .action(async (id: string, support: string, o) => {
    if (!["for", "against", "abstain"].includes(support)) throw new MeshworkError(`support must be for, against or abstain (got ${support})`);
    const mw = await connect(g(), { signer: true });
    const receipt = await mw.governance.vote(proposalId(id), support as Support, o.reason);
    const governor = mw.context.contracts.governor;
    const cast = receipt.logs.map((l) => governor.interface.parseLog(l)).find((e) => e?.name === "VoteCast");
    // The weight: the MESH delegated to the voter and its own active stake, at the vote's snapshot.
    console.log(`voted ${support} on ${id} with ${formatUnits(cast?.args.weight ?? 0n, 18)} votes`);
  });

gov
  .command("queue <proposalId>")
  .description("queue a succeeded proposal in the timelock")
  .action(async (id: string) => {
    const mw = await connect(g(), { signer: true });
    await mw.governance.queue(await proposalById(mw, id));
    console.log(`queued ${id}`);
  });

gov
  .command("execute <proposalId>")
  .description("execute a queued proposal after the timelock delay")
  .action(async (id: string) => {
    const mw = await connect(g(), { signer: true });
    await mw.governance.execute(await proposalById(mw, id));
    console.log(`executed ${id}`);
  });

gov
  .command("list")
  .description("every proposal with its state and tallies")
  .action(async () => {
    const mw = await connect(g(), { signer: false });
    const list = await mw.governance.list();
    if (list.length === 0) console.log("no proposals");
    for (const p of list) {
      const votes = `for ${formatUnits(p.votes.for, 18)}, against ${formatUnits(p.votes.against, 18)}, abstain ${formatUnits(p.votes.abstain, 18)} (quorum ${p.quorum === undefined ? "known once voting opens" : formatUnits(p.quorum, 18)})`;
      console.log(`${p.proposalId}  ${p.state.padEnd(9)} ${p.description}\n  ${votes}`);
    }
  });

gov
  .command("escalations")
  .description("the disputes only governance can decide now, with their evidence and deadline")
  .action(async () => {
    const mw = await connect(g(), { signer: false });
    const list = await mw.governance.escalations();
    if (list.length === 0) console.log("no escalated disputes");
    const latency = await mw.governance.latency();
    for (const e of list) console.log(describeEscalation(e, latency).join("\n"));
  });

/* THE LOCAL DEVNET */

program
  .command("fund <address>")
  .description("local devnet only: send 1 ETH (gas), 2,000 MESH (to stake) and 10,000 tUSD (collateral, prices) to an address, e.g. a new provider node's")
  .action(async (address: string) => {
    if (!isAddress(address)) throw new MeshworkError(`not an address: ${address}`);
    if (g().network !== "localhost") throw new MeshworkError("fund is for the local devnet only (--network localhost)");
    const mw = await connect({ ...g(), account: g().account ?? "0" }, { signer: true }); // the deployer holds the MESH
    const signer = mw.context.signer("fund");
    const send = (action: string, tx: () => Promise<unknown>) => mw.context.send(action, tx as () => Promise<ContractTransactionResponse>);
    await send("send ETH", () => signer.sendTransaction({ to: address, value: parseUnits("1", 18) }));
    const mesh = new Contract(mw.book.contracts.mesh, ["function transfer(address to, uint256 amount) returns (bool)"], signer);
    await send("send MESH", () => mesh.transfer(address, parseUnits("2000", 18)));
    const tusd = new Contract(mw.context.token("tUSD"), ["function mint(address to, uint256 amount)"], signer);
    await send("mint tUSD", async () => tusd.mint(address, parseUnits("10000", await mw.balances.decimals("tUSD"))));
    console.log(`funded ${address}: 1 ETH, 2000 MESH, 10000 tUSD`);
  });

/* PROVIDERS AND STATS */

program
  .command("providers")
  .description("providers")
  .command("list")
  .description("registered providers with their posted prices (the price board)")
  .option("--region <code>", "only this region")
  .option("--renewable", "only renewable energy")
  .action(async (o) => {
    const mw = await connect(g(), { signer: false });
    const list = await mw.providers.list({ region: o.region, renewableOnly: Boolean(o.renewable) });
    if (list.length === 0) console.log("no providers");
    for (const p of list) {
      const posted: string[] = [];
      for (const [s, v] of Object.entries(p.prices)) if (v > 0n) posted.push(`${formatUnits(v, await mw.balances.decimals(s))} ${s}/unit`);
      const prices = posted.join(", ");
      console.log(
        `${p.address}  ${p.profile.region || "--"} ${Energy[p.profile.energy].toLowerCase().padEnd(9)} ${p.profile.gpuCount}×${p.profile.vramGB} GB  ` +
          `${p.active ? "active  " : "inactive"}  ${prices || "no price"}  reliability ${p.reputation.reliability.toFixed(2)}`,
      );
    }
  });

program
  .command("stats")
  .description("queue times, price index, utilisation and slashes, from events")
  .action(async () => {
    const mw = await connect(g(), { signer: false });
    const s = await mw.stats();
    const q = s.queueTime.all;
    console.log(`jobs        ${s.jobs.total} (${Object.entries(s.jobs.byState).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(", ") || "none"})`);
    console.log(`queue time  p50 ${q.p50 ?? "-"} s, p90 ${q.p90 ?? "-"} s, p99 ${q.p99 ?? "-"} s over ${q.count} jobs`);
    for (const [token, index] of Object.entries(s.priceIndex)) {
      const symbol = Object.entries(mw.book.contracts.paymentTokens).find(([, a]) => a.toLowerCase() === token.toLowerCase())?.[0] ?? token;
      console.log(`price index ${symbol}: ${formatUnits(index.pricePerUnit, await mw.balances.decimals(symbol))} per unit over ${index.jobs} jobs`);
    }
    console.log(`utilisation ${(s.utilisation.utilisation * 100).toFixed(1)}% of provider time`);
    console.log(`slashes     ${s.slashes.length}${s.slashes.length ? ": " + s.slashes.map((x) => `${x.reason} ${x.provider.slice(0, 10)}`).join(", ") : ""}`);
  });


await runCli(program, () => {
  for (const p of providers) p.destroy();
});
