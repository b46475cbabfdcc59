// Compile a solc standard-JSON input (stdin) with the pinned npm solc and print the output JSON (stdout).
// Imports that are not in the input are resolved from node_modules (e.g. "@openzeppelin/contracts/...")
// relative to the project root given as argv[2]; the source unit names stay relative, so no absolute
// path ends up in metadata or artifacts.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(process.argv[2] ?? ".");
const require = createRequire(path.join(root, "package.json"));
const solc = require("solc");

function findImports(unitName) {
  if (unitName.includes("..")) {
    return { error: `refusing import outside the project: ${unitName}` };
  }
  const candidates = [path.join(root, "node_modules", unitName), path.join(root, unitName)];
  for (const candidate of candidates) {
    try {
      return { contents: readFileSync(candidate, "utf8") };
    } catch {
      // try the next candidate
    }
  }
  return { error: `import not found: ${unitName}` };
}

const input = readFileSync(0, "utf8");
const output = solc.compile(input, { import: findImports });
process.stdout.write(JSON.stringify({ version: solc.version(), output: JSON.parse(output) }));
