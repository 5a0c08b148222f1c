import { createRequire } from "node:module";
import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { configVariable, defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);

/** The compiler comes from the npm `solc` package (wasm): no download is ever needed. */
const SOLC_VERSION = "0.8.30";

const ci = process.env.CI === "true";

const compiler = (runs: number) => ({
  version: SOLC_VERSION,
  path: require.resolve("solc/soljson.js"),
  settings: { optimizer: { enabled: true, runs }, viaIR: true, evmVersion: "cancun" },
});

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  solidity: {
    profiles: {
      default: {
        compilers: [compiler(10_000)],
        // Fewer optimizer runs keep the two halves of the market under the 24 KB code-size limit (the
        // audit module is off the hot path; the core loses a few hundred gas per call).
        overrides: {
          "contracts/market/AuditModule.sol": compiler(200),
          "contracts/market/JobMarket.sol": compiler(1_000),
        },
      },
    },
  },
  paths: {
    tests: { mocha: "test", solidity: "contracts" },
  },
  test: {
    solidity: {
      fuzz: { runs: ci ? 512 : 256 },
      invariant: { runs: 256, depth: 50, failOnRevert: false },
    },
    mocha: { timeout: 120_000 },
  },
  typechain: { outDir: "types/ethers-contracts" },
  networks: {
    hardhatMainnet: { type: "edr-simulated", chainType: "l1" },
    // `hardhat node`; MESHWORK_RPC_URL points it elsewhere (the tests start nodes on free ports).
    localhost: { type: "http", chainType: "l1", url: process.env.MESHWORK_RPC_URL ?? "http://127.0.0.1:8545" },
    sepolia: {
      type: "http",
      chainType: "l1",
      // Checked against the RPC's: a URL of another chain (a local node, chain 31337, would even get the
      // devnet module with its minutes-long windows) fails instead of deploying there as "sepolia".
      chainId: 11155111,
      url: configVariable("SEPOLIA_RPC_URL"),
      accounts: [configVariable("SEPOLIA_PRIVATE_KEY")],
    },
  },
});
