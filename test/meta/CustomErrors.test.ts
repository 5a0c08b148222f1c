/**
 * "Every custom error has a test that triggers it": every error declared in the contracts' interfaces
 * must be named in a revert assertion of a test (mocha `revertedWithCustomError(..., "Name")` or a
 * Solidity `expectRevert(...Name.selector...)`).
 */
import { expect } from "chai";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { ErrorFragment } from "ethers";
import { network } from "hardhat";

const { ethers } = await network.create();

function files(dir: string, pattern: RegExp): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path, pattern);
    return pattern.test(name) ? [path] : [];
  });
}

describe("custom errors", () => {
  const tests = [...files("test", /\.test\.ts$/), ...files("contracts", /\.t\.sol$/)]
    .filter((f) => !f.endsWith("CustomErrors.test.ts"))
    .map((f) => readFileSync(f, "utf8"))
    .join("\n");

  // Each contract's own errors (the OpenZeppelin ones it inherits are OpenZeppelin's to test).
  const contracts: [contract: string, prefix: string][] = [
    ["JobMarket", "JobMarket"],
    ["ProviderRegistry", "ProviderRegistry"],
    ["ComputeCommons", "Commons"],
  ];
  for (const [contract, prefix] of contracts) {
    it(`each error of ${contract} is triggered by a test`, async () => {
      const factory = await ethers.getContractFactory(contract);
      const own = factory.interface.fragments
        .filter((f): f is ErrorFragment => f.type === "error")
        .map((f) => f.name)
        .filter((name) => name.startsWith(prefix));
      expect(own.length).to.be.greaterThan(5);
      const untested = own.filter((name) => !new RegExp(`["\\.]${name}["\\.(]`).test(tests));
      expect(untested, `errors without a test: ${untested.join(", ")}`).to.deep.equal([]);
    });
  }
});
