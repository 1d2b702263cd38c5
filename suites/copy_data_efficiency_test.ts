import { assert, assertEquals } from "@std/assert";
import { openEngine } from "../runner/engine.ts";
import { COPY_TRAINING, examplesSeen } from "./copy_arms.ts";
import { copyDataEfficiency, firstReaching, medianE90 } from "./copy_data_efficiency.ts";
import { smokeRun } from "./harness.ts";

Deno.test("E₉₀ is the strings seen at the first point at or above 0.9", () => {
  const curve = [
    { examples: 100, accuracy: 0.5 },
    { examples: 200, accuracy: 0.9 },
    { examples: 300, accuracy: 0.95 },
  ];
  assertEquals(firstReaching(curve), 200);
  assertEquals(firstReaching(curve.slice(0, 1)), null);
});

Deno.test("a seed that never reached the level sorts last in the median E₉₀", () => {
  assertEquals(medianE90([300, null, 100]), 300);
  assertEquals(medianE90([null, null, 100]), null);
});

Deno.test("strings seen grow with the steps, the same for every arm of a seed", () => {
  const c = COPY_TRAINING.quick;
  const seen = examplesSeen(c, 0, 3);
  assertEquals(seen.length, 3);
  // A row of 96 tokens holds at least 2 whole examples of ≤ 43 tokens: ≥ 64 per step.
  assert(seen[0] >= 2 * c.batch && seen[1] > seen[0] && seen[2] > seen[1], `${seen}`);
  assertEquals(examplesSeen(c, 0, 3), seen);
});

Deno.test("at the smoke budget no arm reaches 0.9: the ratio is inconclusive", async () => {
  const outcome = await smokeRun(copyDataEfficiency, await openEngine("portable"));
  assertEquals(outcome.checks.map((x) => [x.id, x.actual]), [["J5-ratio", "inconclusive"]]);
  const e90 = outcome.metrics.e90 as Record<string, (number | null)[]>;
  assertEquals(Object.keys(e90), COPY_TRAINING.smoke.arms);
  // One curve point per step of each arm (the smoke profile evaluates every step).
  const fig = outcome.figures[0];
  assertEquals(fig.id, "accuracy-vs-examples");
  assertEquals(fig.data.length, COPY_TRAINING.smoke.arms.length * COPY_TRAINING.smoke.steps);
});
