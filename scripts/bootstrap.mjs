#!/usr/bin/env node
// Runs a project task with everything it needs installed, on any machine with Node >= 20 (package.json engines) and npm.
//
//   node scripts/bootstrap.mjs <task> [args...]      (npm test / npm start / npm run bench:gas call this)
//
// 1. Hardhat 3 needs Node >= 22, and the worker's database `node:sqlite` (without a flag) 22.13. When
//    the system Node is older, the npm package `node@22` (a real Node binary from the registry) is
//    installed once into .tools/ and used for everything below.
// 2. `npm install` runs under that Node 22 (an install under Node 20 silently skips EDR's native
//    package), once: a stamp in node_modules records the package files it installed from.
// 3. The task runs under Node 22 with .tools first on PATH, so child processes use it too.
//
// Plain JavaScript with no dependencies: it must run before anything is installed.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const toolsBin = join(root, ".tools", "node_modules", ".bin");
const stampFile = join(root, "node_modules", ".meshwork-install-stamp");
const MIN_NODE_MAJOR = 22;
/** The oldest Node of each major line this project runs on ([major, minor]); later majors all do. */
const MIN_NODE = [MIN_NODE_MAJOR, 13];
const MIN_NODE_23 = [23, 4]; // node:sqlite without a flag from 22.13 and 23.4

/**
 * Task name -> [script under node_modules/.bin or a repository path, ...fixed arguments], or a list of
 * such steps run in order (the task's own arguments go to the last one).
 */
const COMPILE = ["hardhat", "compile", "--quiet"];
// Type-checks the tests, benchmarks, scripts and SDK (tsconfig.json) against the contracts' typechain
// types, which the compile step writes: Hardhat runs TypeScript without checking it.
const TYPECHECK = ["tsc", "-p", "tsconfig.json"];
const TASKS = {
  test: [COMPILE, TYPECHECK, ["hardhat", "test"]],
  typecheck: [COMPILE, TYPECHECK],
  "bench:sdk": ["hardhat", "run", "bench/sdk.ts"],
  "bench:worker": ["hardhat", "run", "bench/worker.ts"],
  worker: [COMPILE, ["tsx", "scripts/worker.ts"]],
  meshwork: [COMPILE, ["tsx", "scripts/meshwork.ts"]],
  docs: [COMPILE, ["typedoc", "--options", "typedoc.json"]],
  "sdk:build": [COMPILE, ["tsc", "-p", "sdk/tsconfig.json"]],
  compile: ["hardhat", "compile"],
  coverage: ["hardhat", "test", "--coverage"],
  "bench:gas": ["hardhat", "run", "bench/gas.ts"],
  start: [COMPILE, ["tsx", "scripts/devnet.ts"]],
  deploy: ["hardhat", "run", "scripts/deploy.ts"],
  hardhat: ["hardhat"],
};

function log(message) {
  process.stderr.write(`[bootstrap] ${message}\n`);
}

function run(command, args, env) {
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit", env });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

function nodeVersion(nodePath) {
  const out = spawnSync(nodePath, ["-p", "process.versions.node"], { encoding: "utf8" });
  return out.status === 0 ? out.stdout.trim() : "0.0.0";
}

function nodeMajor(nodePath) {
  return Number(nodeVersion(nodePath).split(".")[0]);
}

/** Whether a Node version ("22.13.1") is MIN_NODE or later (on the 23 line, MIN_NODE_23 or later). */
function recentEnough(version) {
  const [major, minor] = version.split(".").map(Number);
  const least = major === MIN_NODE_23[0] ? MIN_NODE_23 : MIN_NODE;
  return major > least[0] || (major === least[0] && minor >= least[1]);
}

/** The path of a Node >= 22.13 binary, installing `node@22` into .tools/ when the system one is older. */
function ensureNode() {
  if (recentEnough(process.versions.node)) return process.execPath;
  const local = join(toolsBin, "node");
  if (existsSync(local) && recentEnough(nodeVersion(local))) return local;
  log(`Node ${process.versions.node} is older than ${MIN_NODE.join(".")}: installing node@${MIN_NODE_MAJOR} into .tools/`);
  const status = run(npmCommand(), [
    ...npmArgs(),
    "install",
    "--no-save",
    "--no-package-lock",
    "--no-audit",
    "--no-fund",
    "--prefix",
    join(root, ".tools"),
    `node@${MIN_NODE_MAJOR}`,
  ]);
  if (status !== 0 || !recentEnough(nodeVersion(local))) {
    throw new Error(`could not install node@${MIN_NODE_MAJOR} from the npm registry`);
  }
  return local;
}

/** npm's own CLI script when we were started by npm (so it can run under any Node), else `npm`. */
function npmCommand() {
  return process.env.npm_execpath?.endsWith(".js") ? process.execPath : "npm";
}
function npmArgs() {
  return process.env.npm_execpath?.endsWith(".js") ? [process.env.npm_execpath] : [];
}

function installStamp(nodePath) {
  const hash = createHash("sha256");
  for (const file of ["package.json", "package-lock.json", ".npmrc"]) {
    const path = join(root, file);
    hash.update(file).update(existsSync(path) ? readFileSync(path) : "");
  }
  hash.update(`node${nodeMajor(nodePath)}`);
  return hash.digest("hex");
}

/** Runs `npm install` under Node 22 unless node_modules already matches the package files. */
function ensurePackages(nodePath, env) {
  const stamp = installStamp(nodePath);
  if (existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp) return;
  log("installing packages (npm install) under Node " + nodeMajor(nodePath));
  const npm = process.env.npm_execpath?.endsWith(".js") ? [nodePath, process.env.npm_execpath] : ["npm"];
  // onnxruntime-node's install script would download the CUDA provider's libraries from outside the
  // registry: skipped through the environment, where the script looks first (an .npmrc key for it made
  // npm 11 warn on every command). An operator's own value wins.
  const installEnv = { ...env, ONNXRUNTIME_NODE_INSTALL: env.ONNXRUNTIME_NODE_INSTALL || "skip" };
  const status = run(npm[0], [...npm.slice(1), "install", "--no-audit", "--no-fund"], installEnv);
  if (status !== 0) throw new Error("npm install failed");
  // Of the files as the install left them: npm may rewrite package-lock.json (e.g. adding other
  // platforms' optional packages), which would otherwise make the next command install again.
  writeFileSync(stampFile, installStamp(nodePath));
}

function main() {
  const [task, ...rest] = process.argv.slice(2);
  const spec = TASKS[task];
  if (!spec) {
    log(`unknown task "${task}"; known: ${Object.keys(TASKS).join(", ")}`);
    return 2;
  }
  const nodePath = ensureNode();
  const env = { ...process.env, PATH: [dirname(nodePath), process.env.PATH].join(delimiter) };
  ensurePackages(nodePath, env);
  const steps = Array.isArray(spec[0]) ? spec : [spec];
  for (let i = 0; i < steps.length; i++) {
    const [bin, ...fixed] = steps[i];
    const script = bin.includes("/") ? join(root, bin) : join(root, "node_modules", ".bin", bin);
    const status = run(nodePath, [script, ...fixed, ...(i === steps.length - 1 ? rest : [])], env);
    if (status !== 0) return status;
  }
  return 0;
}

try {
  process.exitCode = main();
} catch (error) {
  log(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
}
