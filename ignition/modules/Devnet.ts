/**
 * The local devnet: the whole system (ignition/modules/Meshwork.ts) plus the 6-decimal test stablecoin,
 * both it and MESH itself allowlisted as payment tokens.
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { buildMeshwork } from "./Meshwork.js";

export default buildModule("MeshworkDevnet", (m) => {
  const usd = m.contract("TestUSD");
  return { ...buildMeshwork(m, [usd], { allowMesh: true }), usd };
});
