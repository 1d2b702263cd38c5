import { assert, assertEquals } from "@std/assert";
import { openEngine } from "../runner/engine.ts";
import { COPY_TRAINING } from "./copy_arms.ts";
import { smokeRun } from "./harness.ts";
import { CONFIGS, knee, ngramHashingProbe, trendViolations } from "./ngram_hashing_probe.ts";

Deno.test("the knee is the first n below 0.9 of the baseline", () => {
  const ns = [1, 2, 3, 4, 5];
  assertEquals(knee(ns, [0.98, 0.97, 0.95, 0.5, 0.4], 1.0), 4);
  assertEquals(knee(ns, [0.98, 0.97, 0.95, 0.93, 0.91], 1.0), null);
  assertEquals(knee(ns, [0.8, 0.97, 0.95, 0.5, 0.4], 1.0), 1);
});

Deno.test("trend violations count rises above the tolerance only", () => {
  assertEquals(trendViolations([0.9, 0.92, 0.5, 0.56, 0.3], 0.05), 1);
  assertEquals(trendViolations([0.9, 0.8, 0.7], 0.05), 0);
  assertEquals(trendViolations([0.5, 0.6, 0.4, 0.5], 0.05), 2);
});

Deno.test("at the smoke budget the probe measures accuracies, and the control still holds", async () => {
  // No validity gate here: the checks are made whatever the trained model learned.
  const c = CONFIGS.smoke;
  const outcome = await smokeRun(ngramHashingProbe, await openEngine("portable"));
  assertEquals(outcome.checks.map((k) => k.id), ["J6-short", "J6-long", "J6-trend", "J6-control"]);
  const m = outcome.metrics as {
    baseline: number[];
    accuracy: number[][];
    control: { baseline: number; accuracy: number[]; knee: number | null };
  };
  assertEquals(m.baseline.length, COPY_TRAINING.smoke.seeds);
  assertEquals(m.accuracy.map((a) => a.length), m.baseline.map(() => c.ns.length));
  for (
    const a of [...m.baseline, ...m.accuracy.flat(), m.control.baseline, ...m.control.accuracy]
  ) {
    assert(a >= 0 && a <= 1, `accuracy ${a}`);
  }
  // 3 steps teach nothing: a no-duplicate accuracy of 0 makes the ratios 0, not NaN, and a
  // baseline that may be 0 bounds no ratio from above, so neither ratio check can decide.
  assertEquals(m.baseline, [0]);
  const byId = Object.fromEntries(outcome.checks.map((k) => [k.id, k]));
  assertEquals([byId["J6-short"].measured, byId["J6-short"].actual], [0, "inconclusive"]);
  assertEquals([byId["J6-long"].measured, byId["J6-long"].actual], [0, "inconclusive"]);
  // The constructed model needs no training: its knee sits at its own n at any budget.
  assertEquals([m.control.knee, byId["J6-control"].actual], [c.controlN, "pass"]);
});
