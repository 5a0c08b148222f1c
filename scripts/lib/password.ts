/**
 * The keystore password of the CLIs (scripts/worker.ts, scripts/meshwork.ts). Where it comes from is
 * taken out of the environment when this module loads, before the CLI does anything, so that no process
 * a CLI starts (nvidia-smi, the runtimes' threads) inherits it.
 */
import { readFileSync } from "node:fs";
import { MeshworkConfigError } from "../../sdk/src/errors.js";

const passwordFrom = { value: process.env.MESHWORK_PASSWORD || undefined, file: process.env.MESHWORK_PASSWORD_FILE || undefined };
delete process.env.MESHWORK_PASSWORD;
delete process.env.MESHWORK_PASSWORD_FILE;
let passwordRead: string | undefined;

/** The keystore password: the first line of the file MESHWORK_PASSWORD_FILE names, or MESHWORK_PASSWORD. */
export function password(): string {
  if (passwordRead !== undefined) return passwordRead;
  const { value, file } = passwordFrom;
  if (value !== undefined && file !== undefined) throw new MeshworkConfigError("set MESHWORK_PASSWORD_FILE or MESHWORK_PASSWORD, not both");
  if (file !== undefined) {
    let content: string;
    try {
      content = readFileSync(file, "utf8");
    } catch (cause) {
      throw new MeshworkConfigError(`cannot read MESHWORK_PASSWORD_FILE ${file}`, { cause, details: { path: file } });
    }
    const line = content.split("\n")[0].replace(/\r$/, "");
    if (!line) throw new MeshworkConfigError(`the first line of MESHWORK_PASSWORD_FILE ${file} is empty: it is the keystore password`);
    return (passwordRead = line);
  }
  if (value === undefined) throw new MeshworkConfigError("set MESHWORK_PASSWORD_FILE to a file whose first line is the keystore password (or MESHWORK_PASSWORD to the password)");
  return (passwordRead = value);
}

