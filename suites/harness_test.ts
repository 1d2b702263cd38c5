import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { matMul } from "../onnx/ops.ts";
import { PORTABLE_ENGINE } from "../onnx/runtime.ts";
import {
  acrossSeeds,
  chunkedEvaluator,
  medianSeedRatioMargin,
  Phases,
  SeedResults,
  trainingSeeds,
  validityGate,
} from "./harness.ts";
import type { CheckSpec } from "./suite.ts";
import { wilsonInterval } from "./stats.ts";

Deno.test("training seeds start at the base seed; per-seed statistics and records", () => {
  assertEquals(trainingSeeds({ seed: 3 }, 3), [3, 4, 5]);
  const r = new SeedResults([3, 4, 5], [{ x: 0.5 }, { x: 0.1234567 }, { x: 0.9 }]);
  assertEquals(r.median((v) => v.x), 0.5);
  assertEquals(r.spread((v) => v.x), { median: 0.5, lo: 0.123457, hi: 0.9 });
  assertEquals(r.record((v) => v.x), { seeds: [3, 4, 5], perSeed: [0.5, 0.123457, 0.9] });
  assertThrows(() => new SeedResults([0, 1], [1]), RangeError, "one per seed");
});

Deno.test("the per-seed loop trains, then measures, each seed in order and records phases", async () => {
  const phases = new Phases();
  const order: string[] = [];
  const r = await acrossSeeds([0, 1], phases, "arm", (seed) => {
    order.push(`train ${seed}`);
    return Promise.resolve({ seconds: 2 + seed, seed });
  }, {
    name: "eval",
    run: (m) => {
      order.push(`eval ${m.seed}`);
      return Promise.resolve(10 * m.seed);
    },
  });
  assertEquals(order, ["train 0", "eval 0", "train 1", "eval 1"]);
  assertEquals(r.results, [0, 10]);
  assertEquals(Object.keys(phases.seconds), [
    "train arm seed 0",
    "eval arm seed 0",
    "train arm seed 1",
    "eval arm seed 1",
  ]);
  assertEquals(phases.seconds["train arm seed 1"], 3);
});

Deno.test("a chunked evaluation covers every row once, padding the last chunk", async () => {
  const ev = await chunkedEvaluator({ engine: PORTABLE_ENGINE, threads: 1 }, {
    name: "scale",
    params: [{ name: "w", shape: [2, 2] }],
    inputs: [{ name: "x", dtype: "float32", width: 2 }],
    chunk: 2,
    outputs: (p, x) => ({ y: matMul(x.x, p.w) }),
  });
  const w = new Map([["w", Float32Array.of(2, 0, 0, 3)]]);
  const x = Float32Array.of(1, 1, 2, 2, 3, 3, 4, 4, 5, 5);
  const seen: [number, number, number[]][] = [];
  await ev.run(w, 5, { x }, (out, start, n) => {
    seen.push([start, n, Array.from(out.y.data as Float32Array)]);
  });
  assertEquals(seen, [
    [0, 2, [2, 3, 4, 6]],
    [2, 2, [6, 9, 8, 12]],
    [4, 1, [10, 15, 0, 0]], // a zero row pads the last chunk
  ]);
  await assertRejects(() => ev.run(w, 6, { x }, () => {}), RangeError, "6 rows of 2");
});

const SPEC: CheckSpec = {
  id: "G",
  title: "gate",
  source: "test",
  metric: "m",
  measured: 1,
  threshold: 0.9,
  direction: ">=",
  expected: "pass",
  evidence: "trained",
  detail: "d.",
};

Deno.test("a validity gate that fails makes the checks behind it inconclusive", () => {
  const held = validityGate(SPEC);
  assertEquals([held.result.actual, held.failure], ["pass", undefined]);
  assertEquals(held.check({ ...SPEC, id: "A", measured: 0.5 }).actual, "fail");
  const failed = validityGate({ ...SPEC, measured: 0.5 });
  assertEquals(failed.result.actual, "fail");
  const behind = failed.check({ ...SPEC, id: "A" });
  assertEquals(behind.actual, "inconclusive");
  assertEquals(behind.detail, "d. INCONCLUSIVE: the validity gate G did not pass");
  // A reason given by the suite wins, and applies whatever the gate's own verdict.
  const named = validityGate(SPEC, "arm X did not learn");
  assertEquals(named.check({ ...SPEC, id: "A" }).detail, "d. INCONCLUSIVE: arm X did not learn");
});

Deno.test("a median seed's ratio of proportions is bounded by Bonferroni of Wilson bounds", () => {
  // Seeds' ratios 0.5, 0.25, 0.75: the median seed is the first, 128/256 over 256/256.
  const { ratio, margin } = medianSeedRatioMargin([0.5, 0.25, 0.75], [1, 1, 1], 256);
  assertEquals(ratio, 0.5);
  const n = wilsonInterval(128, 256, 0.95); // one-sided 97.5% bounds each
  const d = wilsonInterval(256, 256, 0.95);
  assertEquals(margin.lower, n.lower / d.upper);
  assertEquals(margin.upper, n.upper / d.lower);
  assertEquals(margin.basis.startsWith("the median seed's 128 of 256 over 256 of 256"), true);
  assertThrows(() => medianSeedRatioMargin([0.5, 0.5], [1, 1], 256), RangeError, "odd number");
});
