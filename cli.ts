/**
 * The command line behind `deno task reproduce` and `deno task list`.
 *
 *   reproduce [--suite ID ...] [--profile quick|full] [--seed N] [--threads N] [--out DIR]
 *             [--engine portable|native] [--fresh]
 *   list
 *
 * Exit codes: 0 when every check's verdict matches its expectation, 1 when one differs, 2 for
 * bad usage (the message names the flag or value and what is allowed).
 * @module
 */
import { parseArgs } from "@std/cli";
import { join } from "node:path";
import { writeFileAtomic } from "./io/atomic.ts";
import { writeReport } from "./reports/report.ts";
import { formatNumber } from "./reports/report.ts";
import {
  RESULTS_SCHEMA,
  type RunResults,
  type RunTimings,
  summarise,
  summaryLine,
} from "./reports/schema.ts";
import { defaultThreads, ortVersion } from "./onnx/runtime.ts";
import { ENGINE_KINDS, type EngineInfo, type EngineKind, openEngine } from "./runner/engine.ts";
import { Progress } from "./runner/progress.ts";
import { SUITES } from "./suites/registry.ts";
import { type Profile, PROFILES, type Suite } from "./suites/suite.ts";

/** Bad command-line usage: printed without a stack, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const VERSION = "0.1.0";

const HELP = `claimbench ${VERSION}: reproduce sequence-model paper claims with fixed seeds.

Usage:
  deno task reproduce [options]   run suites, print verdicts, write results and reports
  deno task list                  list suites and their claims

Options of reproduce:
  --suite ID      run only this suite (repeatable; default: every suite)
  --profile P     quick | full (default: full)
  --seed N        base seed, integer ≥ 0 (default: 0); training seeds are N, N+1, N+2
  --threads N     ONNX Runtime threads, integer ≥ 1 (default: number of cores, here ${defaultThreads()})
  --out DIR       output folder (default: out)
  --engine E      portable | native (default: portable). portable runs claimbench's custom
                  ops as their ONNX definitions; native as C++ kernels, built with g++ into
                  .cache/native: faster training, but different rounding, so trained models
                  and results differ, and the thresholds were calibrated on portable (README).
  --fresh         retrain instead of using cached trained models
  -h, --help      this text

Exit codes: 0 every verdict matches its expectation; 1 a verdict differs; 2 bad usage.`;

/** Parsed options of `reproduce`. */
export interface ReproduceOptions {
  suites: Suite[];
  profile: Profile;
  seed: number;
  threads: number;
  out: string;
  /** Which kernels run claimbench's custom ops (`--engine`). */
  engine: EngineKind;
  fresh: boolean;
}

function intFlag(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || !Number.isSafeInteger(Number(raw))) {
    throw new UsageError(`--${name} must be an integer ≥ ${min}: got "${raw}"`);
  }
  return Number(raw);
}

/** Parses the arguments after `reproduce`; UsageError names a bad flag or value. */
export function parseReproduceArgs(args: readonly string[]): ReproduceOptions {
  let a;
  try {
    a = parseArgs(args, {
      string: ["suite", "profile", "seed", "threads", "out", "engine"],
      boolean: ["fresh", "help"],
      collect: ["suite"],
      alias: { h: "help" },
    });
  } catch (e) {
    throw new UsageError(
      `${
        (e as Error).message
      }\nAllowed: --suite, --profile, --seed, --threads, --out, --engine, --fresh, --help`,
    );
  }
  if (a._.length) throw new UsageError(`unexpected argument "${a._[0]}"`);
  const ids = (a.suite as string[] | undefined) ?? [];
  const suites = ids.length ? ids.map(findSuite) : [...SUITES];
  const profile = (a.profile as string | undefined) ?? "full";
  if (!PROFILES.includes(profile as Profile)) {
    throw new UsageError(`--profile must be one of ${PROFILES.join(", ")}: got "${profile}"`);
  }
  const engine = (a.engine as string | undefined) ?? "portable";
  if (!ENGINE_KINDS.includes(engine as EngineKind)) {
    throw new UsageError(`--engine must be one of ${ENGINE_KINDS.join(", ")}: got "${engine}"`);
  }
  return {
    suites: [...new Map(suites.map((s) => [s.id, s])).values()],
    profile: profile as Profile,
    seed: intFlag("seed", a.seed as string | undefined, 0, 0),
    threads: intFlag("threads", a.threads as string | undefined, defaultThreads(), 1),
    out: (a.out as string | undefined) ?? "out",
    engine: engine as EngineKind,
    fresh: a.fresh === true,
  };
}

function findSuite(id: string): Suite {
  const s = SUITES.find((x) => x.id === id);
  if (!s) {
    throw new UsageError(
      `--suite "${id}" is not a suite. Allowed: ${SUITES.map((x) => x.id).join(", ")}`,
    );
  }
  return s;
}

/** The `list` output: one block per suite. */
export function listSuites(): string {
  return SUITES.map((s) => `${s.id}\n  ${s.title}\n  claim: ${s.claim}\n  source: ${s.source}`)
    .join("\n\n");
}

/** The `versions` of a results file: code, engine (its source hash and kind), runtimes. */
export function versions(engine: EngineInfo): Record<string, string> {
  return {
    claimbench: VERSION,
    engine: engine.version,
    ops: engine.kind,
    onnxruntime: ortVersion(),
    deno: Deno.version.deno,
  };
}

/**
 * Opens the engine of `--engine` (`runner/engine.ts`), once per run; a UsageError naming the
 * cause if the native op library cannot be built.
 */
export async function startEngine(kind: EngineKind, log: (m: string) => void): Promise<EngineInfo> {
  let engine: EngineInfo;
  try {
    engine = await openEngine(kind);
  } catch (e) {
    throw new UsageError(`--engine ${kind} needs the native ops: ${(e as Error).message}`);
  }
  log(
    engine.kind === "native"
      ? `engine: native (custom ops from ${engine.library})`
      : "engine: portable (custom ops run their ONNX definitions)",
  );
  return engine;
}

/** Runs the suites, writes results and reports, prints the verdicts; returns the exit code. */
export async function reproduce(o: ReproduceOptions): Promise<number> {
  const all: RunResults[] = [];
  const timings: RunTimings[] = [];
  const log = (m: string) => console.error(m);
  const engine = await startEngine(o.engine, log);
  const trainedThisRun = new Set<string>();
  for (const suite of o.suites) {
    log(`== ${suite.id} (profile ${o.profile}, seed ${o.seed}, ${o.threads} threads)`);
    const t0 = performance.now();
    const outcome = await suite.run({
      profile: o.profile,
      seed: o.seed,
      engine,
      threads: o.threads,
      fresh: o.fresh,
      trainedThisRun,
      cacheDir: join(".cache", "models"),
      progress: (label, total, unit) => new Progress(label, total, { unit }),
      log,
    });
    const summary = summarise(outcome.checks);
    const results: RunResults = {
      schema: RESULTS_SCHEMA,
      suite: suite.id,
      title: suite.title,
      claim: suite.claim,
      source: suite.source,
      profile: o.profile,
      seed: o.seed,
      threads: o.threads,
      config: outcome.config,
      checks: outcome.checks,
      metrics: outcome.metrics,
      figures: outcome.figures,
      verdict: summary.allMatch ? "pass" : "fail",
      versions: versions(engine),
    };
    const timing: RunTimings = {
      suite: suite.id,
      wallSeconds: Number(((performance.now() - t0) / 1000).toFixed(2)),
      phases: outcome.phases ?? {},
    };
    const dir = join(o.out, suite.id);
    await Deno.mkdir(dir, { recursive: true });
    await writeFileAtomic(join(dir, "results.json"), JSON.stringify(results, null, 2) + "\n");
    await writeFileAtomic(join(dir, "timings.json"), JSON.stringify(timing, null, 2) + "\n");
    all.push(results);
    timings.push(timing);
    log(`== ${suite.id} done in ${timing.wallSeconds} s`);
  }
  await writeReport(o.out, all, timings);
  console.log(verdictTable(all));
  const summary = summarise(all.flatMap((r) => r.checks));
  console.log(`\n${summaryLine(summary)}; report: ${join(o.out, "REPORT.md")}`);
  return summary.allMatch ? 0 : 1;
}

/** A plain-text table of every check's verdict. */
export function verdictTable(all: readonly RunResults[]): string {
  const rows = [[
    "suite",
    "check",
    "evidence",
    "measured",
    "threshold",
    "expected",
    "actual",
    "match",
  ]];
  for (const r of all) {
    for (const c of r.checks) {
      rows.push([
        r.suite,
        c.id,
        c.evidence,
        formatNumber(c.measured),
        c.threshold === null ? "—" : `${c.direction} ${formatNumber(c.threshold)}`,
        c.expected,
        c.actual,
        c.matches ? "yes" : "NO",
      ]);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd()).join(
    "\n",
  );
}

/** Entry point: returns the process exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === undefined || command === "-h" || command === "--help" || command === "help") {
      console.log(HELP);
      return command === undefined ? 2 : 0;
    }
    if (command === "list") {
      if (rest.length) throw new UsageError(`list takes no arguments: got "${rest[0]}"`);
      console.log(listSuites());
      return 0;
    }
    if (command === "reproduce") {
      if (rest.includes("--help") || rest.includes("-h")) {
        console.log(HELP);
        return 0;
      }
      return await reproduce(parseReproduceArgs(rest));
    }
    throw new UsageError(`unknown command "${command}". Allowed: reproduce, list`);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\nRun with --help for usage.`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
