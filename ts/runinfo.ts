// What a run records about itself: versions, git commit, timing.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { HelloResult } from "./bridge/ops.js";
import { ROOT } from "./paths.js";

const require = createRequire(import.meta.url);

export function gitCommit(): string | null {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {
    return null;
  }
}

export function nodeVersions(): Record<string, string> {
  const pkg = (name: string) => JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version as string;
  return { node: process.versions.node, "zeromq.js": pkg("zeromq"), msgpackr: pkg("msgpackr"), libzmq: require("zeromq").version };
}

export function runInfo(hello: HelloResult): Record<string, unknown> {
  return { git_commit: gitCommit(), versions: { ...nodeVersions(), ...hello.versions }, device: hello.device, cuda: hello.cuda };
}
