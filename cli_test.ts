import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { listSuites, main, parseReproduceArgs, selectEngine, UsageError } from "./cli.ts";
import { nativeOpsLibrary, useNativeOps } from "./onnx/runtime.ts";
import { engineVersion } from "./suites/model_cache.ts";
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

Deno.test("the engine choice sets the sessions' library and the cache's engine hash", async () => {
  const lines: string[] = [];
  try {
    await selectEngine("portable", (m) => lines.push(m));
    assertEquals(nativeOpsLibrary(), null);
    const portable = engineVersion();
    await selectEngine("native", (m) => lines.push(m));
    assertStringIncludes(nativeOpsLibrary() ?? "", "libclaimbench_ops.so");
    const native = engineVersion();
    assertEquals(portable === native, false);
    assertStringIncludes(lines.join("\n"), "engine: native");
  } finally {
    useNativeOps(null);
  }
});
