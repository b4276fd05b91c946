#!/usr/bin/env node
// `npx ultra`: the compiled CLI (npm run build / make setup compiles ts/ to dist/).
import { existsSync } from "node:fs";

const cli = new URL("../dist/ts/cli.js", import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write("error: the CLI is not built; run `make setup` (or `npm run build`) in the project root\n");
  process.exit(1);
}
await import(cli.href);
