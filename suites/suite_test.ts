import { assertEquals, assertStringIncludes } from "@std/assert";
import { check, type CheckSpec, marginVerdict } from "./suite.ts";
import { medianSeedMargin } from "./harness.ts";

const margin = (lower: number, upper: number) => ({ lower, upper, confidence: 0.95, basis: "t" });

Deno.test("marginVerdict: pass only when the bound on the threshold's side clears it", () => {
  const cases: [number, number, "<=" | ">=" | "<" | ">", number, string][] = [
    [0.71, 0.8, ">=", 0.7, "pass"],
    [0.69, 0.8, ">=", 0.7, "inconclusive"],
    [0.6, 0.69, ">=", 0.7, "fail"],
    [0.7, 0.8, ">", 0.7, "inconclusive"],
    [0.01, 0.03, "<=", 0.03, "pass"],
    [0.029, 0.036, "<=", 0.03, "inconclusive"],
    [0.031, 0.04, "<=", 0.03, "fail"],
    [0.031, 0.04, "<", 0.031, "fail"],
  ];
  for (const [lo, hi, dir, t, want] of cases) {
    assertEquals(marginVerdict(margin(lo, hi), dir, t), want, `[${lo}, ${hi}] ${dir} ${t}`);
  }
});

const SPEC: CheckSpec = {
  id: "M",
  title: "a proportion",
  source: "test",
  metric: "accuracy",
  measured: 0.754,
  threshold: 0.7,
  direction: ">=",
  expected: "pass",
  evidence: "trained",
  detail: "d.",
};

Deno.test("check() with a margin: the median passes, but a wide interval is inconclusive", () => {
  const narrow = check({ ...SPEC, margin: medianSeedMargin([0.754, 0.754, 0.793], 256) });
  assertEquals([narrow.actual, narrow.matches], ["pass", true]);
  assertStringIncludes(narrow.detail, "one-sided 95% Wilson bounds 0.707");
  assertStringIncludes(narrow.detail, "the median seed, 193 of 256");
  // The same median on 64 strings cannot tell 0.754 from 0.7.
  const wide = check({ ...SPEC, margin: medianSeedMargin([0.75], 64) });
  assertEquals([wide.actual, wide.matches], ["inconclusive", false]);
  assertStringIncludes(wide.detail, "the threshold 0.7 lies between them: INCONCLUSIVE.");
  assertEquals(wide.margin?.basis, "the median seed, 48 of 64");
});

Deno.test("medianSeedMargin pools the two middle seeds of an even count", () => {
  const m = medianSeedMargin([0.5, 0.9, 0.6, 0.1], 100);
  assertEquals(m.basis, "the two middle seeds, 110 of 200");
});
