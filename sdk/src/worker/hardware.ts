/**
 * What a worker machine has: its NVIDIA GPUs (through `nvidia-smi`, when installed), else its CPU and
 * memory (node:os). `meshwork-worker` uses it to fill the provider profile (`gpuCount`, `vramGB`).
 *
 * GPU memory is reported in whole GiB, rounded to the nearest (an "80GB" H100 reports 81559 MiB → 80;
 * a 24 GB RTX 4090 24564 MiB → 24); `vramMiB` keeps the exact figure.
 */
import { execFile } from "node:child_process";
import { availableParallelism, cpus, totalmem } from "node:os";

export interface GpuInfo {
  name: string;
  /** Memory in GiB, rounded to the nearest whole GiB. */
  vramGB: number;
  /** Memory as nvidia-smi reports it, MiB. */
  vramMiB: number;
}

export interface HardwareInfo {
  gpus: GpuInfo[];
  gpuCount: number;
  /** GiB of the GPU with the least memory (what every GPU has); 0 without GPUs. */
  vramGB: number;
  cpu: { model: string; cores: number };
  /** System memory, GiB, rounded to the nearest. */
  memoryGB: number;
  /** Where the GPU list came from: `nvidia-smi`, or `cpu` when there is none (no GPUs). */
  source: "nvidia-smi" | "cpu";
}

/** The arguments `detectHardware` runs nvidia-smi with (what {@link parseNvidiaSmi} parses). */
export const NVIDIA_SMI_ARGS = ["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"] as const;

/** How long nvidia-smi may take before the machine counts as GPU-less, ms. */
export const NVIDIA_SMI_TIMEOUT_MS = 5_000;

/**
 * Parses `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits` output: one GPU per
 * line, `name, MiB`. Tolerates CRLF, blank lines, surrounding spaces, a header line, a `MiB` unit, and
 * commas inside the name (the memory is the last field). Lines whose memory is not a number (`[N/A]`,
 * `[Not Supported]`, error text) are skipped.
 */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const comma = line.lastIndexOf(",");
    if (comma < 0) continue;
    const name = line.slice(0, comma).trim().replace(/^"|"$/g, "");
    const memory = line.slice(comma + 1).trim();
    const match = /^(\d+(?:\.\d+)?)\s*(MiB|GiB)?$/i.exec(memory);
    if (!name || !match) continue;
    const vramMiB = Number(match[1]) * (match[2]?.toLowerCase() === "gib" ? 1024 : 1);
    if (!Number.isFinite(vramMiB)) continue;
    gpus.push({ name, vramGB: Math.round(vramMiB / 1024), vramMiB });
  }
  return gpus;
}

/**
 * Runs nvidia-smi with `args`; resolves to its stdout, or undefined when it is not installed, fails, or
 * takes longer than `timeoutMs`.
 */
export function runNvidiaSmi(args: readonly string[] = NVIDIA_SMI_ARGS, timeoutMs = NVIDIA_SMI_TIMEOUT_MS): Promise<string | undefined> {
  return new Promise((resolve) => {
    try {
      execFile("nvidia-smi", [...args], { timeout: timeoutMs, windowsHide: true, maxBuffer: 1 << 20 }, (error, stdout) => {
        resolve(error ? undefined : String(stdout));
      });
    } catch {
      resolve(undefined);
    }
  });
}

/** The GPUs nvidia-smi lists (empty when it is absent or lists none). */
export async function detectGpus(): Promise<GpuInfo[]> {
  const out = await runNvidiaSmi();
  return out === undefined ? [] : parseNvidiaSmi(out);
}

/** This machine's GPUs (nvidia-smi), CPU and memory. Never throws; a machine without GPUs reports `source: "cpu"`. */
export async function detectHardware(): Promise<HardwareInfo> {
  const gpus = await detectGpus();
  const list = cpus();
  const cores = typeof availableParallelism === "function" ? availableParallelism() : list.length;
  return {
    gpus,
    gpuCount: gpus.length,
    vramGB: gpus.length ? Math.min(...gpus.map((g) => g.vramGB)) : 0,
    cpu: { model: list[0]?.model?.trim() || "unknown", cores: Math.max(1, cores) },
    memoryGB: Math.round(totalmem() / 2 ** 30),
    source: gpus.length ? "nvidia-smi" : "cpu",
  };
}
