/** How the operator's CLI shows a provider's profile and its rejected jobs (`register`, `status`). */
import { Energy, type Profile } from "../../sdk/src/providers.js";
import { runtimeName } from "../../sdk/src/spec.js";

/** An energy flag by name: unknown, grid or renewable. */
export function energyName(energy: Energy): string {
  return Energy[energy]?.toLowerCase() ?? `energy ${energy}`;
}

/** One line for a profile, with names rather than the registry's numbers. */
export function describeProfile(p: Profile): string {
  const runtimes = p.runtimes.map((id) => runtimeName(id) ?? `runtime ${id}`).join(", ") || "none";
  return (
    `region ${p.region || "undisclosed"}, energy ${energyName(p.energy)}, GPU class ${p.gpuClass}${p.gpuClass === 0 ? " (unclassified)" : ""}, ` +
    `${p.gpuCount} GPU${p.gpuCount === 1 ? "" : "s"} × ${p.vramGB} GB, runtimes ${runtimes}`
  );
}

/** Rejected jobs counted by the reason the worker recorded (`price`, `window`, …), most first: "price 2, window 1". */
export function rejectionReasons(notes: (string | undefined)[]): string {
  const counts = new Map<string, number>();
  for (const note of notes) counts.set(note ?? "no reason recorded", (counts.get(note ?? "no reason recorded") ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([reason, n]) => `${reason} ${n}`).join(", ");
}
