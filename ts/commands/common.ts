// What the command modules (ts/commands/*.ts, ts/bench/*.ts) share: a typed yargs command, the global options
// as sidecar options, and JSON on stdout. ts/cli.ts lists the commands.
import { writeFileSync } from "node:fs";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import type { SidecarOptions } from "../bridge/sidecar.js";

/** One yargs command: its name (with positionals), the line `--help` lists, its options, what it does. The
 * handler's arguments are typed by the builder's options; the command itself is untyped, so that commands of
 * different options go in one list (ts/cli.ts). */
export function defineCommand<U>(
  command: string,
  describe: string,
  builder: (y: Argv) => Argv<U>,
  handler: (a: ArgumentsCamelCase<U>) => void | Promise<void>,
): CommandModule<any, any> {
  return { command, describe, builder, handler: handler as CommandModule<any, any>["handler"] };
}

/** The options on every command (ts/cli.ts). */
export interface GlobalOptions {
  device: string;
  threads: number;
  transport: string;
  verbose: boolean;
}

export const sidecarOptions = (args: object): SidecarOptions => {
  const a = args as GlobalOptions; // yargs' global options, lost by the per-command builder types
  return {
    device: a.device as SidecarOptions["device"],
    torchThreads: a.threads,
    transport: a.transport as SidecarOptions["transport"],
    onLog: a.verbose ? (l) => process.stderr.write(`${l}\n`) : undefined,
  };
};

/** `value` as indented JSON on stdout, and in `file` too when given. */
export const printJson = (value: unknown, file?: string) => {
  const text = JSON.stringify(value, null, 2);
  if (file) writeFileSync(file, text + "\n");
  process.stdout.write(text + "\n");
};
