/**
 * The subset of `@std/cli` that claimbench uses: {@linkcode parseArgs}.
 *
 * JSR is unreachable from our machines, so `deno.json` maps `@std/cli` here. The real
 * `@std/cli` `parseArgs` is minimist-style and silently accepts unknown flags; ours wraps
 * `node:util` `parseArgs` in strict mode, because the CLI must reject unknown flags with a
 * clear error (exit code 2). The options below are the subset both understand.
 * @module
 */
import { parseArgs as nodeParseArgs } from "node:util";

/** Options of {@linkcode parseArgs}. */
export interface ParseOptions {
  /** Flags that take a string value. */
  string?: readonly string[];
  /** Flags that are booleans. */
  boolean?: readonly string[];
  /**
   * Flags that may repeat (string or boolean); each collects an array of values, `[]` when
   * absent. A flag not listed here keeps its last value.
   */
  collect?: readonly string[];
  /** Default values. */
  default?: Record<string, string | boolean | string[]>;
  /** Aliases: `{ h: "help" }`. */
  alias?: Record<string, string>;
}

/** Parsed arguments: flags by name, positionals in `_`. */
export interface Args {
  /** Positional arguments. */
  _: string[];
  /** Flag values. */
  [flag: string]: string | boolean | string[] | boolean[] | undefined;
}

/**
 * Parses `args` strictly: an unknown flag, or a string flag without a value, throws a
 * `TypeError` whose message names the flag. As in `@std/cli`, an absent boolean flag is `false`
 * and an absent collect flag `[]`.
 */
export function parseArgs(args: readonly string[], opts: ParseOptions = {}): Args {
  type NodeOpt = { type: "string" | "boolean"; multiple?: boolean; short?: string };
  const options: Record<string, NodeOpt> = {};
  const collect = new Set(opts.collect ?? []);
  for (const name of opts.string ?? []) {
    options[name] = { type: "string", multiple: collect.has(name) };
  }
  for (const name of opts.boolean ?? []) {
    options[name] = { type: "boolean", multiple: collect.has(name) };
  }
  for (const [short, long] of Object.entries(opts.alias ?? {})) {
    if (!options[long]) throw new TypeError(`Cannot alias "${short}": no flag "${long}"`);
    if (short.length === 1) options[long].short = short;
  }
  let parsed;
  try {
    parsed = nodeParseArgs({ args: [...args], options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new TypeError((e as Error).message);
  }
  const out: Args = { _: parsed.positionals };
  for (const [k, v] of Object.entries(opts.default ?? {})) out[k] = v;
  for (const [k, v] of Object.entries(parsed.values)) {
    out[k] = v as string | boolean | string[] | boolean[];
  }
  for (const name of opts.boolean ?? []) out[name] ??= collect.has(name) ? [] : false;
  for (const name of opts.string ?? []) if (collect.has(name)) out[name] ??= [];
  return out;
}
