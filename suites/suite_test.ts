import { assertEquals, assertStringIncludes } from "@std/assert";
import {
  calibrationOf,
  check,
  type CheckSpec,
  marginVerdict,
  type Pilot,
  pilotOf,
} from "./suite.ts";
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

Deno.test("a verdict run reports its profile's pilot; a pilot run and a smoke run report none", () => {
  const pilot: Pilot = {
    seeds: [1000, 1001, 1002],
    engine: "portable",
    decided: "kept the budget",
    checks: { J: { measured: 0.6, perSeed: [0.5, 0.6, 0.7], actual: "inconclusive" } },
  };
  const pilots = { quick: pilot };
  assertEquals(pilotOf(pilots, { profile: "quick", seed: 0 }), pilot);
  assertEquals(pilotOf(pilots, { profile: "full", seed: 0 }), undefined);
  assertEquals(pilotOf(pilots, { profile: "quick", seed: 1000 }), undefined);
  assertEquals(pilotOf(pilots, { profile: "smoke", seed: 0 }), undefined);
  assertEquals(calibrationOf(pilot, "J"), {
    seeds: [1000, 1001, 1002],
    measured: 0.6,
    perSeed: [0.5, 0.6, 0.7],
    actual: "inconclusive",
  });
  assertEquals(calibrationOf(pilot, "K"), undefined);
  assertEquals(calibrationOf(undefined, "J"), undefined);
  const spec: CheckSpec = {
    id: "J",
    title: "t",
    source: "s",
    metric: "m",
    measured: 0.8,
    threshold: 0.7,
    direction: ">=",
    expected: "pass",
    evidence: "trained",
    detail: "d",
    calibration: calibrationOf(pilot, "J"),
  };
  // Pre-registered: the check expects its pilot's verdict and keeps the claim beside it.
  const judged = check(spec);
  assertEquals(judged.calibration?.actual, "inconclusive");
  assertEquals([judged.expected, judged.claimed, judged.actual], ["inconclusive", "pass", "pass"]);
  assertEquals(judged.matches, false);
  const agreeing = check({ ...spec, calibration: { ...spec.calibration!, actual: "pass" } });
  assertEquals([agreeing.expected, agreeing.claimed, agreeing.matches], ["pass", undefined, true]);
});
