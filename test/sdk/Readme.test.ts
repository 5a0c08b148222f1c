/**
 * The SDK type-checks under `strict`, and so does every ```ts example in sdk/README.md (compiled against
 * the SDK's sources as `@meshwork/sdk`), so the documentation cannot drift from the API.
 */
import { expect } from "chai";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import ts from "typescript";

const root = resolve(import.meta.dirname, "..", "..");

const OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ["lib.es2023.d.ts", "lib.dom.d.ts"],
  types: ["node"],
  strict: true,
  esModuleInterop: true,
  skipLibCheck: true,
  noEmit: true,
  baseUrl: root,
  paths: { "@meshwork/sdk": ["sdk/src/index.ts"] },
};

function diagnostics(files: string[]): string[] {
  const program = ts.createProgram(files, OPTIONS);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}` : "";
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
  });
}

describe("SDK: types and README examples", function () {
  this.timeout(180_000);

  it("type-checks the SDK, the worker, the CLIs and the devnet, and every example of sdk/README.md", () => {
    const readme = readFileSync(join(root, "sdk", "README.md"), "utf8");
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(blocks.length).to.be.greaterThanOrEqual(7);
    const dir = join(root, ".meshwork", "readme-examples");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const files = blocks.map((code, i) => {
      const file = join(dir, `example-${i + 1}.ts`);
      writeFileSync(file, `${code}\nexport {};\n`);
      return file;
    });
    const entryPoints = ["sdk/src/index.ts", "sdk/src/worker/index.ts", "scripts/worker.ts", "scripts/meshwork.ts", "scripts/devnet.ts"].map((f) => join(root, f));
    const errors = diagnostics([...entryPoints, ...files]);
    expect(errors, errors.join("\n")).to.deep.equal([]);
  });
});
