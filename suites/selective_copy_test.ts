import { assertAlmostEquals, assertEquals } from "@std/assert";
import {
  checkArithmetic,
  checkTableConsistency,
  CONFIGS,
  SEED_TABLE,
  unreachableFraction,
} from "./selective_copy.ts";
import { receptiveField } from "../models/dilated_cnn.ts";

Deno.test("unreachable fraction f(R) matches CLAIMS.md §2.2", () => {
  const task = { area: 40, items: 10 };
  const expected: [number, number][] = [
    [24, 0.581],
    [30, 0.387],
    [32, 0.323],
    [36, 0.194],
    [
      40,
      0.065,
    ],
    [42, 0],
    [64, 0],
  ];
  for (const [R, f] of expected) assertAlmostEquals(unreachableFraction(R, task), f, 5e-4);
  assertAlmostEquals(unreachableFraction(16, { area: 24, items: 6 }), 10 / 19);
});

Deno.test("S1 passes on the seed table and fails on a mistyped parameter count", () => {
  assertEquals(checkArithmetic().check.actual, "pass");
  const broken = SEED_TABLE.map((r, i) => (i === 3 ? { ...r, params: r.params + 1 } : r));
  const c = checkArithmetic(broken).check;
  assertEquals([c.actual, c.measured], ["fail", 1]);
});

Deno.test("S2 passes on the seed table and fails when a short-reach row has low loss", () => {
  assertEquals(checkTableConsistency().actual, "pass");
  const broken = SEED_TABLE.map((r) =>
    r.layers === 10 && r.dilations.every((d) => d === 1) ? { ...r, valLoss: 0.001 } : r
  );
  assertEquals(checkTableConsistency(broken).actual, "fail");
});

Deno.test("every profile has solving and failing arms on both sides of R*", () => {
  for (const c of Object.values(CONFIGS)) {
    const required = c.task.area + 2;
    for (const arm of c.arms) {
      const rf = receptiveField({ kernel: c.kernel, dilations: arm.dilations });
      const covers = rf.contiguous >= required;
      assertEquals(covers, arm.expect === "solves", arm.id);
    }
  }
});
