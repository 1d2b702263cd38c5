/**
 * The command line behind `deno task reproduce` and `deno task list`.
 *
 *   reproduce [--suite ID ...] [--profile quick|full] [--seed N] [--threads N] [--out DIR]
 *             [--engine portable|native] [--fresh] [--debug]
 *
 * Without `--engine`, each suite runs on the engine its profile's pilot ran on.
 *   list
 *
 * Exit codes: 0 when every check's verdict matches its expectation, 1 when one differs, 2 for
 * bad usage (the message names the flag or value and what is allowed; checked before any work,
 * `--out` included, which is created and test-written), 3 when the run broke: a suite threw, a
 * write failed, ONNX Runtime failed. A broken run prints one line naming what broke (the stack
 * too with `--debug`); REPORT.md and index.html, rewritten after each suite, show the suites that
 * finished.
 * @module
 */
import { parseArgs } from "@std/cli";
import { join } from "node:path";
import { writeFileAtomic } from "./io/atomic.ts";
import { expectedText, formatNumber, writeFigures, writePages } from "./reports/report.ts";
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
import { CALIBRATION_SEED, type Profile, PROFILES, type Suite } from "./suites/suite.ts";

/** Bad command-line usage: printed without a stack, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A run that broke (not a claim that failed): `where` names the suite or file; exit code 3. */
export class RunError extends Error {
  constructor(readonly where: string, cause: unknown) {
    super(`the run broke ${where}: ${oneLine(cause)}`, { cause });
    this.name = "RunError";
  }
}

/** An error's message on one line (ONNX Runtime's span several); the name if it has none. */
function oneLine(e: unknown): string {
  const text = e instanceof Error ? e.message || e.name : String(e);
  return text.replace(/\s*\n\s*/g, " ").trim();
}

const VERSION = "0.1.0";

const HELP = `claimbench ${VERSION}: reproduce sequence-model paper claims with fixed seeds.

Usage:
  deno task reproduce [options]   run suites, print verdicts, write results and reports
  deno task list                  list suites and their claims

Options of reproduce:
  --suite ID      run only this suite (repeatable; default: every suite)
  --profile P     quick | full (default: full)
  --seed N        base seed, integer ≥ 0 (default: 0); training seeds are N, N+1, N+2;
                  verdicts are judged on 0, 1, 2, and 1000 and up are calibration seeds:
                  --seed 1000 re-runs the pilots that set budgets and thresholds
  --threads N     ONNX Runtime threads, 1 to the number of cores (default: all, here ${defaultThreads()})
  --out DIR       output folder (default: out); created and test-written before any work
  --engine E      portable | native (default: each suite's profile runs on the engine its
                  pilot was calibrated on; native where it has no pilot). portable runs
                  claimbench's custom ops as their ONNX definitions; native as C++ kernels,
                  built with g++ into .cache/native: faster training, but different rounding,
                  so trained models and results differ from the pilot's engine's (README).
  --fresh         retrain instead of using cached trained models
  --debug         when the run breaks, print the stack too
  -h, --help      this text
Every option but --suite may be given once.

Exit codes: 0 every verdict matches its expectation; 1 a verdict differs; 2 bad usage;
3 the run broke (a suite threw, a write failed, ONNX Runtime failed): one line on stderr names
what broke, and the report shows the suites that finished.`;

/** Parsed options of `reproduce`. */
export interface ReproduceOptions {
  suites: Suite[];
  profile: Profile;
  seed: number;
  threads: number;
  out: string;
  /**
   * Which kernels run claimbench's custom ops (`--engine`); null: each suite's profile runs on
   * its pilot's engine ({@linkcode suiteEngine}).
   */
  engine: EngineKind | null;
  fresh: boolean;
  /** Print the stack when the run breaks (`--debug`). */
  debug: boolean;
}

const STRING_FLAGS = ["suite", "profile", "seed", "threads", "out", "engine"];
const BOOLEAN_FLAGS = ["fresh", "debug", "help"];

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
    // Every flag is collected, so that one given twice is an error rather than last-one-wins.
    a = parseArgs(args, {
      string: STRING_FLAGS,
      boolean: BOOLEAN_FLAGS,
      collect: [...STRING_FLAGS, ...BOOLEAN_FLAGS],
      alias: { h: "help" },
    });
  } catch (e) {
    throw new UsageError(
      `${(e as Error).message}\nAllowed: ${
        [...STRING_FLAGS, ...BOOLEAN_FLAGS].map((f) => `--${f}`).join(", ")
      }`,
    );
  }
  if (a._.length) throw new UsageError(`unexpected argument "${a._[0]}"`);
  const once = <T extends string | boolean>(name: string): T | undefined => {
    const values = a[name] as T[];
    if (values.length > 1) {
      const given = values.every((v) => typeof v === "string")
        ? ` (${values.map((v) => JSON.stringify(v)).join(", ")})`
        : "";
      throw new UsageError(
        `--${name} is given ${values.length} times${given}: give it once (only --suite repeats)`,
      );
    }
    return values[0];
  };
  const ids = a.suite as string[];
  const suites = ids.length ? ids.map(findSuite) : [...SUITES];
  const profile = once<string>("profile") ?? "full";
  if (!PROFILES.includes(profile as Profile)) {
    throw new UsageError(`--profile must be one of ${PROFILES.join(", ")}: got "${profile}"`);
  }
  const engine = once<string>("engine") ?? null;
  if (engine !== null && !ENGINE_KINDS.includes(engine as EngineKind)) {
    throw new UsageError(`--engine must be one of ${ENGINE_KINDS.join(", ")}: got "${engine}"`);
  }
  const seed = intFlag("seed", once<string>("seed"), 0, 0);
  const cores = defaultThreads();
  const threads = intFlag("threads", once<string>("threads"), cores, 1);
  if (threads > cores) {
    throw new UsageError(
      `--threads must be at most the number of cores, ${cores}: got "${threads}"`,
    );
  }
  const out = once<string>("out") ?? "out";
  const fresh = once<boolean>("fresh") === true;
  const debug = once<boolean>("debug") === true;
  return {
    suites: [...new Map(suites.map((s) => [s.id, s])).values()],
    profile: profile as Profile,
    seed,
    threads,
    out,
    engine: engine as EngineKind | null,
    fresh,
    debug,
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
 * The engine a suite runs on: `--engine` when given, else the one its profile's pilot was
 * calibrated on (a pilot's verdicts can depend on rounding, and the GSSM arms' budgets are only
 * affordable on native kernels), native for a profile without a pilot (it reuses the models of
 * suites piloted there, and trains faster).
 */
export function suiteEngine(
  suite: Pick<Suite, "pilots">,
  profile: Profile,
  forced: EngineKind | null,
): EngineKind {
  return forced ?? suite.pilots?.[profile]?.engine ?? "native";
}

/**
 * Opens an engine (`runner/engine.ts`), once per run and kind; a UsageError naming the cause if
 * the native op library cannot be built.
 */
export async function startEngine(
  kind: EngineKind,
  log: (m: string) => void,
  why = `--engine ${kind}`,
): Promise<EngineInfo> {
  let engine: EngineInfo;
  try {
    engine = await openEngine(kind);
  } catch (e) {
    throw new UsageError(
      `${why} needs the native ops: ${(e as Error).message}` +
        (why.startsWith("--engine") ? "" : " (or pass --engine portable)"),
    );
  }
  log(
    engine.kind === "native"
      ? `engine: native (custom ops from ${engine.library})`
      : "engine: portable (custom ops run their ONNX definitions)",
  );
  return engine;
}

/**
 * Creates the `--out` folder and writes and removes a probe file in it, so that a run that could
 * not save its results stops before any work; a UsageError names the folder and why.
 */
export async function prepareOut(dir: string): Promise<void> {
  if (dir === "") throw new UsageError(`--out must name a folder: got ""`);
  const stat = await Deno.stat(dir).catch(() => null);
  if (stat && !stat.isDirectory) throw new UsageError(`--out "${dir}" is a file, not a folder`);
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new UsageError(`--out "${dir}" cannot be created: ${oneLine(e)}`);
  }
  const probe = join(dir, `.claimbench-probe-${Deno.pid}`);
  try {
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (e) {
    throw new UsageError(`--out "${dir}" is not writable: ${oneLine(e)}`);
  }
}

/** Runs `f`; anything it throws becomes a RunError saying where the run broke. */
async function during<T>(where: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw new RunError(where, e);
  }
}

/** Prints a broken run's one line (and with `debug` its stack) to stderr; returns exit code 3. */
function broke(e: unknown, debug: boolean): number {
  console.error(
    `claimbench: ${e instanceof RunError ? e.message : `the run broke: ${oneLine(e)}`}`,
  );
  if (debug) {
    const cause = e instanceof RunError ? e.cause : e;
    console.error(cause instanceof Error ? cause.stack ?? String(cause) : String(cause));
  }
  return 3;
}

/**
 * Runs the suites, writes each one's results and figures as it finishes and then REPORT.md and
 * index.html from every result so far, prints the verdicts; returns the exit code: 0 or 1 (a
 * verdict differs), or 3 when the run broke (see {@linkcode broke}). Bad usage, `--out`
 * included, throws a UsageError before any work.
 */
export async function reproduce(o: ReproduceOptions): Promise<number> {
  await prepareOut(o.out);
  const log = (m: string) => console.error(m);
  // Every engine the run needs is opened before any work, so a missing g++ stops it at once.
  const engines = new Map<EngineKind, EngineInfo>();
  for (const suite of o.suites) {
    const kind = suiteEngine(suite, o.profile, o.engine);
    const why = o.engine
      ? `--engine ${kind}`
      : `${suite.id}'s ${o.profile} profile (piloted on ${kind})`;
    if (!engines.has(kind)) engines.set(kind, await startEngine(kind, log, why));
  }
  if (o.seed >= CALIBRATION_SEED) {
    log(
      `seed ${o.seed} is a calibration seed (≥ ${CALIBRATION_SEED}): this run is a pilot; ` +
        'the claims\' verdicts are judged on seeds 0, 1, 2 (README, "Seeds")',
    );
  }
  try {
    const all = await runSuites(o, engines, log);
    console.log(verdictTable(all));
    const summary = summarise(all.flatMap((r) => r.checks));
    console.log(`\n${summaryLine(summary)}; report: ${join(o.out, "REPORT.md")}`);
    return summary.allMatch ? 0 : 1;
  } catch (e) {
    return broke(e, o.debug);
  }
}

/** Runs each suite and writes its results, its figures and the report so far; returns results. */
async function runSuites(
  o: ReproduceOptions,
  engines: ReadonlyMap<EngineKind, EngineInfo>,
  log: (m: string) => void,
): Promise<RunResults[]> {
  const all: RunResults[] = [];
  const timings: RunTimings[] = [];
  const trainedThisRun = new Set<string>();
  for (const suite of o.suites) {
    const engine = engines.get(suiteEngine(suite, o.profile, o.engine))!;
    const piloted = suite.pilots?.[o.profile]?.engine;
    log(
      `== ${suite.id} (profile ${o.profile}, seed ${o.seed}, ${o.threads} threads, ` +
        `${engine.kind} engine)`,
    );
    if (piloted && piloted !== engine.kind) {
      log(
        `note: ${suite.id}'s ${o.profile} pilot ran on the ${piloted} engine; on ${engine.kind} ` +
          "the rounding differs, so a verdict near its threshold may differ from the pilot's",
      );
    }
    const t0 = performance.now();
    const { results, timing } = await during(`in suite ${suite.id}`, async () => {
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
      return { results, timing };
    });
    const dir = join(o.out, suite.id);
    await during(`writing ${dir}`, async () => {
      await Deno.mkdir(dir, { recursive: true });
      await writeFileAtomic(join(dir, "results.json"), JSON.stringify(results, null, 2) + "\n");
      await writeFileAtomic(join(dir, "timings.json"), JSON.stringify(timing, null, 2) + "\n");
    });
    all.push(results);
    timings.push(timing);
    // The pages are rewritten from every result so far, so that a run that stops later never
    // leaves new results beside an old report; earlier suites' figures are already written.
    await during(`writing the report in ${o.out}`, async () => {
      await writeFigures(o.out, results);
      await writePages(o.out, all, timings);
    });
    log(`== ${suite.id} done in ${timing.wallSeconds} s`);
  }
  return all;
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
        expectedText(c),
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
    return broke(e, false);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
