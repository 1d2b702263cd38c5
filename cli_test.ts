import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { listSuites, main, parseReproduceArgs, startEngine, UsageError, versions } from "./cli.ts";
import { SUITES } from "./suites/registry.ts";

Deno.test("reproduce options: defaults and repeated --suite", () => {
  const o = parseReproduceArgs([]);
  assertEquals([o.profile, o.seed, o.out, o.fresh, o.engine], [
    "full",
    0,
    "out",
    false,
    "portable",
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
