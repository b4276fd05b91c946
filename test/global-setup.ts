// Compile ts/ to dist/ once, so tests that run the real CLI or a child node process use the current code.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../ts/paths.js";

export default function setup(): void {
  execFileSync(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", join(ROOT, "tsconfig.json")], {
    stdio: "inherit",
  });
}
