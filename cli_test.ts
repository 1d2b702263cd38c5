import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { join } from "node:path";
import {
  listSuites,
  main,
  parseReproduceArgs,
  prepareOut,
  reproduce,
  type ReproduceOptions,
  startEngine,
  suiteEngine,
  UsageError,
  versions,
} from "./cli.ts";
import { SUITES } from "./suites/registry.ts";
import { check, type Suite, type SuiteContext, type SuiteOutcome } from "./suites/suite.ts";

Deno.test("reproduce options: defaults and repeated --suite", () => {
  const o = parseReproduceArgs([]);
  assertEquals([o.profile, o.seed, o.out, o.fresh, o.engine, o.debug], [
    "full",
    0,
    "out",
    false,
    null,
    false,
  ]);
  assertEquals(o.suites.length, SUITES.length);
  const id = SUITES[0].id;
  const p = parseReproduceArgs(["--suite", id, "--suite", id, "--profile", "quick", "--seed", "3"]);
  assertEquals(p.suites.map((s) => s.id), [id]);
  assertEquals([p.profile, p.seed], ["quick", 3]);
  assertEquals(parseReproduceArgs(["--engine", "native"]).engine, "native");
});

Deno.test("bad usage names the flag, the value and what is allowed", () => {
  assertThrows(() => parseReproduceArgs(["--suite", "nope"]), UsageError, `"nope" is not a suite`);
  assertThrows(() => parseReproduceArgs(["--profile", "fast"]), UsageError, "quick, full");
  assertThrows(() => parseReproduceArgs(["--seed=-1"]), UsageError, "--seed must be an integer");
  assertThrows(() => parseReproduceArgs(["--seed", "x"]), UsageError, `got "x"`);
  assertThrows(() => parseReproduceArgs(["--threads", "0"]), UsageError, "--threads");
  assertThrows(() => parseReproduceArgs(["--bogus"]), UsageError, "--bogus");
  assertThrows(
    () => parseReproduceArgs(["--engine", "gpu"]),
    UsageError,
    `--engine must be one of portable, native: got "gpu"`,
  );
});

Deno.test("main exits 2 on bad usage without running anything", async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (m: string) => errors.push(m);
  try {
    assertEquals(await main(["reproduce", "--profile", "fast"]), 2);
    assertEquals(await main(["frobnicate"]), 2);
  } finally {
    console.error = original;
  }
  assertStringIncludes(errors.join("\n"), "unknown command");
});

Deno.test("list shows every suite with its claim", () => {
  const text = listSuites();
  for (const s of SUITES) {
    assertStringIncludes(text, s.id);
    assertStringIncludes(text, s.claim);
  }
});

Deno.test("the engine choice gives the run its library and the results their versions", async () => {
  const lines: string[] = [];
  const portable = await startEngine("portable", (m) => lines.push(m));
  assertEquals([portable.kind, portable.library], ["portable", null]);
  const native = await startEngine("native", (m) => lines.push(m));
  assertStringIncludes(native.library ?? "", "libclaimbench_ops.so");
  assertEquals(portable.version === native.version, false);
  assertStringIncludes(lines.join("\n"), "engine: native");
  assertEquals([versions(native).engine, versions(native).ops], [native.version, "native"]);
  assertEquals([versions(portable).engine, versions(portable).ops], [portable.version, "portable"]);
});

Deno.test("a flag given twice is bad usage, naming the flag; only --suite repeats", () => {
  const twice: [string[], string][] = [
    [["--profile", "quick", "--profile", "full"], `--profile is given 2 times ("quick", "full")`],
    [["--seed", "1", "--seed=2"], `--seed is given 2 times ("1", "2")`],
    [["--threads", "1", "--threads", "1"], "--threads is given 2 times"],
    [["--out", "a", "--out", "b"], "--out is given 2 times"],
    [["--engine", "native", "--engine", "portable"], "--engine is given 2 times"],
    [["--fresh", "--fresh"], "--fresh is given 2 times: give it once (only --suite repeats)"],
    [["--debug", "--debug"], "--debug is given 2 times"],
  ];
  for (const [args, message] of twice) {
    assertThrows(() => parseReproduceArgs(args), UsageError, message);
  }
  assertEquals(parseReproduceArgs(["--debug", "--fresh"]).debug, true);
});

Deno.test("--threads above the core count is bad usage, naming both", () => {
  const cores = navigator.hardwareConcurrency;
  assertEquals(parseReproduceArgs(["--threads", String(cores)]).threads, cores);
  assertThrows(
    () => parseReproduceArgs(["--threads", String(cores + 1)]),
    UsageError,
    `--threads must be at most the number of cores, ${cores}: got "${cores + 1}"`,
  );
});

/** Runs `f` with console.error and console.log captured, one entry per call. */
async function captured<T>(
  f: () => Promise<T>,
): Promise<{ value: T; err: string[]; out: string[] }> {
  const err: string[] = [];
  const out: string[] = [];
  const original = { error: console.error, log: console.log };
  console.error = (m: unknown) => err.push(String(m));
  console.log = (m: unknown) => out.push(String(m));
  try {
    return { value: await f(), err, out };
  } finally {
    Object.assign(console, original);
  }
}

Deno.test("--out that cannot be written is bad usage before any work, naming the path", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const file = join(tmp, "a-file");
    await Deno.writeTextFile(file, "kept");
    // Unwritable even as root and with the test task's permissions: a folder whose probe file's
    // name is taken by a folder (root writes through permission bits, and /proc needs -A).
    const blocked = join(tmp, "blocked");
    await Deno.mkdir(join(blocked, `.claimbench-probe-${Deno.pid}`), { recursive: true });
    const cases: [string, string][] = [
      ["", `--out must name a folder: got ""`],
      [file, `--out "${file}" is a file, not a folder`],
      [join(file, "sub"), `--out "${join(file, "sub")}" cannot be created: `],
      [blocked, `--out "${blocked}" is not writable: `],
    ];
    for (const [out, message] of cases) {
      const { value, err } = await captured(() =>
        main(["reproduce", "--suite", SUITES[0].id, "--out", out])
      );
      assertEquals(value, 2, out);
      assertStringIncludes(err.join("\n"), `error: ${message}`);
      assert(!err.some((l) => l.startsWith("engine:")), "stops before opening the engine");
    }
    assertEquals(await Deno.readTextFile(file), "kept");
    // A good --out is created, nested, and the probe file is gone again.
    const fresh = join(tmp, "new", "out");
    await prepareOut(fresh);
    assertEquals([...Deno.readDirSync(fresh)], []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

function fakeSuite(
  id: string,
  run: (ctx: SuiteContext) => SuiteOutcome | Promise<SuiteOutcome>,
): Suite {
  return {
    id,
    title: `Fake ${id}`,
    claim: `${id} holds.`,
    source: "cli_test.ts",
    run: async (ctx) => await run(ctx),
  };
}

function outcome(measured: number): SuiteOutcome {
  const c = check({
    id: "F1",
    title: "measured ≥ 1",
    source: "cli_test.ts",
    metric: "a number",
    measured,
    threshold: 1,
    direction: ">=",
    expected: "pass",
    evidence: "arithmetic",
    detail: "A fake check.",
  });
  return { config: {}, checks: [c], metrics: {}, figures: [] };
}

function options(out: string, suites: Suite[], debug = false): ReproduceOptions {
  return {
    suites,
    profile: "quick",
    seed: 0,
    threads: 1,
    out,
    engine: "portable",
    fresh: false,
    debug,
  };
}

Deno.test("reproduce: the report is rewritten after each suite; 1 when a verdict differs", async () => {
  const out = await Deno.makeTempDir();
  try {
    let reportBefore = "";
    const first = fakeSuite("fake-first", () => outcome(2));
    const second = fakeSuite("fake-second", async () => {
      reportBefore = await Deno.readTextFile(join(out, "REPORT.md"));
      return outcome(0); // expected pass, actual fail
    });
    const { value, out: printed } = await captured(() => reproduce(options(out, [first, second])));
    assertEquals(value, 1);
    assertStringIncludes(reportBefore, "| fake-first | F1 |");
    assertEquals(reportBefore.includes("fake-second"), false);
    const report = await Deno.readTextFile(join(out, "REPORT.md"));
    assertStringIncludes(report, "| fake-second | F1 |");
    assertStringIncludes(await Deno.readTextFile(join(out, "index.html")), "fake-second");
    assertStringIncludes(printed.join("\n"), "fake-second  F1");
    assertEquals(
      [...Deno.readDirSync(out)].some((e) => e.name.startsWith(".claimbench-probe")),
      false,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("reproduce: a suite that throws breaks the run: exit 3, one line, no stack", async () => {
  const out = await Deno.makeTempDir();
  try {
    const first = fakeSuite("fake-first", () => outcome(2));
    const throws = fakeSuite("fake-throws", () => {
      throw new RangeError("ORT said no\n  on two lines");
    });
    const { value, err, out: printed } = await captured(() =>
      reproduce(options(out, [first, throws]))
    );
    assertEquals(value, 3);
    const lines = err.join("\n").split("\n").filter((l) => l.startsWith("claimbench:"));
    assertEquals(lines, [
      "claimbench: the run broke in suite fake-throws: ORT said no on two lines",
    ]);
    assertEquals(err.some((l) => /^\s+at /m.test(l)), false, "no stack without --debug");
    assertEquals(printed, [], "no verdict table for a broken run");
    // The suite that finished is in the report.
    assertStringIncludes(await Deno.readTextFile(join(out, "REPORT.md")), "| fake-first | F1 |");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("reproduce --debug prints the stack of what broke too", async () => {
  const out = await Deno.makeTempDir();
  try {
    const throws = fakeSuite("fake-throws", () => {
      throw new Error("boom");
    });
    const { value, err } = await captured(() => reproduce(options(out, [throws], true)));
    assertEquals(value, 3);
    const text = err.join("\n");
    assertStringIncludes(
      text,
      "claimbench: the run broke in suite fake-throws: boom\nError: boom\n",
    );
    assertStringIncludes(text, "cli_test.ts");
    assert(/^\s+at /m.test(text), "a stack");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("reproduce: a write that fails breaks the run, naming what it wrote", async () => {
  const out = await Deno.makeTempDir();
  try {
    // The suite puts a file where its results folder goes.
    const blocks = fakeSuite("fake-blocks", async () => {
      await Deno.writeTextFile(join(out, "fake-blocks"), "");
      return outcome(2);
    });
    const { value, err } = await captured(() => reproduce(options(out, [blocks])));
    assertEquals(value, 3);
    assertStringIncludes(
      err.join("\n"),
      `claimbench: the run broke writing ${join(out, "fake-blocks")}: `,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a suite runs on its profile's pilot engine unless --engine says otherwise", () => {
  const pilot = { seeds: [1000], engine: "portable" as const, decided: "", checks: {} };
  const suite = { pilots: { full: pilot } };
  assertEquals(suiteEngine(suite, "full", null), "portable");
  assertEquals(suiteEngine(suite, "quick", null), "native");
  assertEquals(suiteEngine({}, "full", null), "native");
  assertEquals(suiteEngine(suite, "full", "native"), "native");
});
