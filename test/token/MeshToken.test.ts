import { expect } from "chai";
import { network } from "hardhat";
import { MESH } from "../helpers/system.js";

const { ethers, networkHelpers } = await network.create();

describe("MeshToken", () => {
  async function deploy() {
    const [deployer, alice, bob] = await ethers.getSigners();
    const mesh = await ethers.deployContract("MeshToken", [deployer.address, 1_000_000n * MESH]);
    return { mesh, deployer, alice, bob };
  }

  it("mints the whole fixed supply to the recipient", async () => {
    const { mesh, deployer } = await networkHelpers.loadFixture(deploy);
    expect(await mesh.name()).to.equal("Meshwork");
    expect(await mesh.symbol()).to.equal("MESH");
    expect(await mesh.decimals()).to.equal(18n);
    expect(await mesh.totalSupply()).to.equal(1_000_000n * MESH);
    expect(await mesh.balanceOf(deployer.address)).to.equal(1_000_000n * MESH);
  });

  it("uses a timestamp clock (ERC-6372)", async () => {
    const { mesh } = await networkHelpers.loadFixture(deploy);
    expect(await mesh.CLOCK_MODE()).to.equal("mode=timestamp");
    expect(await mesh.clock()).to.equal(BigInt(await networkHelpers.time.latest()));
  });

  it("counts votes only once delegated, and keeps checkpoints by timestamp", async () => {
    const { mesh, deployer, alice } = await networkHelpers.loadFixture(deploy);
    await mesh.transfer(alice.address, 100n * MESH);
    expect(await mesh.getVotes(alice.address)).to.equal(0n);
    await expect(mesh.connect(alice).delegate(alice.address))
      .to.emit(mesh, "DelegateVotesChanged")
      .withArgs(alice.address, 0n, 100n * MESH);
    const delegatedAt = await networkHelpers.time.latest();
    await networkHelpers.time.increase(10);
    await mesh.transfer(alice.address, 50n * MESH);
    expect(await mesh.getVotes(alice.address)).to.equal(150n * MESH);
    expect(await mesh.getPastVotes(alice.address, delegatedAt)).to.equal(100n * MESH);
    expect(await mesh.getVotes(deployer.address)).to.equal(0n);
  });

  it("accepts an ERC-2612 permit and rejects its replay", async () => {
    const { mesh, alice, bob } = await networkHelpers.loadFixture(deploy);
    const deadline = BigInt(await networkHelpers.time.latest()) + 3600n;
    const { chainId } = await ethers.provider.getNetwork();
    const domain = { name: "Meshwork", version: "1", chainId, verifyingContract: await mesh.getAddress() };
    const types = {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    };
    const value = { owner: alice.address, spender: bob.address, value: 7n * MESH, nonce: 0n, deadline };
    const sig = ethers.Signature.from(await alice.signTypedData(domain, types, value));
    await mesh.permit(alice.address, bob.address, 7n * MESH, deadline, sig.v, sig.r, sig.s);
    expect(await mesh.allowance(alice.address, bob.address)).to.equal(7n * MESH);
    expect(await mesh.nonces(alice.address)).to.equal(1n);
    await expect(mesh.permit(alice.address, bob.address, 7n * MESH, deadline, sig.v, sig.r, sig.s)).to.be.revertedWithCustomError(
      mesh,
      "ERC2612InvalidSigner",
    );
  });
});
