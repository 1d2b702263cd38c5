import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { mambaParamCount } from "../models/mamba.ts";
import { openEngine } from "../runner/engine.ts";
import { smokeRun } from "./harness.ts";
import { medianGapMargin } from "./harness.ts";
import { CONFIGS, PILOTS, selectiveCopyingSsm } from "./selective_copying_ssm.ts";

Deno.test("every profile trains an S6 and an LTI arm of equal size within 15%", () => {
  for (const c of Object.values(CONFIGS)) {
    const size = (layer: "s6" | "lti") =>
      mambaParamCount({
        vocab: c.task.vocab,
        dModel: c.dModel,
        layers: c.layers,
        layer,
        dState: c.dState,
      });
    const ids = c.arms.map((a) => a.id);
    assert(ids.includes("s6") && ids.includes("lti"), ids.join());
    assert(Math.abs(size("s6") / size("lti") - 1) <= 0.15, `${size("s6")} vs ${size("lti")}`);
  }
});

Deno.test("the gap's margin: Bonferroni of the two medians' Wilson bounds", () => {
  const m = medianGapMargin([0.95, 0.97, 0.96], [0.2, 0.1, 0.3], 8000);
  assert(m.lower < 0.96 - 0.2 && m.upper > 0.76, JSON.stringify(m));
  assertAlmostEquals(m.lower, 0.76 - 0.017, 0.005);
  assertThrows(() => medianGapMargin([0.9, 0.8], [0.1, 0.2], 100), RangeError, "even");
});

Deno.test("the pilots' checks are checks of their profile", () => {
  for (const [profile, pilot] of Object.entries(PILOTS)) {
    const c = CONFIGS[profile as keyof typeof PILOTS];
    const ids = ["M1-gate", "M1-gap", ...c.arms.map((a) => `M1-${a.id}`)];
    for (const id of Object.keys(pilot.checks)) assert(ids.includes(id), `${profile}: ${id}`);
  }
});

Deno.test("at the smoke budget every arm's accuracy is measured, behind the gate", async () => {
  const c = CONFIGS.smoke;
  const outcome = await smokeRun(selectiveCopyingSsm, await openEngine("portable"));
  assertEquals(outcome.checks.map((k) => k.id), [
    "M1-gate",
    ...c.arms.map((a) => `M1-${a.id}`),
    "M1-gap",
  ]);
  const byId = Object.fromEntries(outcome.checks.map((k) => [k.id, k]));
  for (const k of outcome.checks) {
    assert(k.evidence === "trained" && k.margin !== undefined, k.id);
    if (k.id !== "M1-gap") assert(k.measured! >= 0 && k.measured! <= 1, `${k.id}: ${k.measured}`);
  }
  if (byId["M1-gate"].actual !== "pass") {
    for (const k of outcome.checks.slice(1)) assertEquals(k.actual, "inconclusive", k.id);
  }
  const curve = outcome.figures.find((f) => f.id === "accuracy-curve")!;
  assertEquals(curve.data.length, c.arms.length * (c.steps / c.evalEvery));
});
