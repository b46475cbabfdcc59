// Bundles the portal's JavaScript from npm packages (ethers, @openzeppelin/merkle-tree, htmx) into
// app/portal/static/dist: no CDN, everything served by the gateway. Run by `make setup`.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "app/portal/static/dist");
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { portal: join(root, "web/src/portal.js"), verify: join(root, "web/src/verify.js") },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outdir: out,
  legalComments: "eof",
  logLevel: "warning",
});
copyFileSync(join(root, "node_modules/htmx.org/dist/htmx.min.js"), join(out, "htmx.min.js"));
