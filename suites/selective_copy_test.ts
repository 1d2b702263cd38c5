import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import {
  checkArithmetic,
  checkTableConsistency,
  CONFIGS,
  eliminationError,
  PILOTS,
  SEED_TABLE,
  selectiveCopy,
  unreachableFraction,
} from "./selective_copy.ts";
import { receptiveField } from "../models/dilated_cnn.ts";
import { openEngine } from "../runner/engine.ts";
import { smokeRun } from "./harness.ts";

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

Deno.test("an arm blind to the area errs on 1 − H_N/N of the answer bytes", () => {
  assertAlmostEquals(eliminationError(1), 0);
  assertAlmostEquals(eliminationError(6), 1 - 49 / 120);
  assertAlmostEquals(eliminationError(10), 1 - 7381 / 25200);
});

Deno.test("arm ids are distinct across CNN and SSM arms; only the full profile draws SSM arms", () => {
  for (const c of Object.values(CONFIGS)) {
    const ids = [...c.arms, ...c.ssmArms].map((a) => a.id);
    assertEquals(new Set(ids).size, ids.length);
  }
  assertEquals(CONFIGS.full.ssmArms.map((a) => a.layer), ["s6"]);
  assertEquals(CONFIGS.quick.ssmArms, []);
});

Deno.test("the pilots' checks are checks of their profile", () => {
  for (const [profile, pilot] of Object.entries(PILOTS)) {
    const c = CONFIGS[profile as keyof typeof PILOTS];
    const ids = ["S3-gate", ...c.arms.map((a) => `S3-${a.id}`)];
    for (const id of Object.keys(pilot.checks)) assert(ids.includes(id), `${profile}: ${id}`);
  }
});

Deno.test("at the smoke budget every arm's mask error is measured; the gate makes S3 inconclusive", async () => {
  const c = CONFIGS.smoke;
  const outcome = await smokeRun(selectiveCopy, await openEngine("portable"));
  assertEquals(outcome.checks.map((k) => k.id), [
    "S1",
    "S2",
    "S3-gate",
    ...c.arms.map((a) => `S3-${a.id}`),
    "S3-params",
  ]);
  const byId = Object.fromEntries(outcome.checks.map((k) => [k.id, k]));
  for (const id of ["S1", "S2", "S3-params"]) assertEquals(byId[id].actual, "pass", id);
  // Four steps teach no arm where the letters lie: the "fails" arms' high error is no evidence.
  assertEquals(byId["S3-gate"].actual, "fail");
  for (const arm of c.arms) assertEquals(byId[`S3-${arm.id}`].actual, "inconclusive", arm.id);
  const perSeed = outcome.metrics.perSeed as Record<
    string,
    { maskError: number; valLoss: number; byPosition: number[] }[]
  >;
  // The SSM arms are trained and measured like the CNNs, but no check reads them.
  assert(c.ssmArms.length > 0);
  for (const arm of c.ssmArms) assert(!outcome.checks.some((k) => k.id.includes(arm.id)));
  const ssmRows = outcome.metrics.ssmArms as { arm: string; params: number; stateBits: number }[];
  assertEquals(ssmRows.map((r) => r.arm), c.ssmArms.map((a) => a.id));
  // S6, 1 layer, d 8, N 4: the scan's d·N fp32 values.
  assertEquals(ssmRows[0].stateBits, 32 * 8 * 4);
  for (const arm of [...c.arms, ...c.ssmArms]) {
    assertEquals(perSeed[arm.id].length, c.seeds);
    for (const r of perSeed[arm.id]) {
      for (const e of [r.maskError, ...r.byPosition]) assert(e >= 0 && e <= 1, `${arm.id}: ${e}`);
      assertEquals(r.byPosition.length, c.task.items);
      assert(Number.isFinite(r.valLoss) && r.valLoss > 0, `${arm.id}: loss ${r.valLoss}`);
    }
  }
  for (const arm of c.arms) {
    const s3 = byId[`S3-${arm.id}`];
    assert(
      s3.measured !== null && s3.measured >= 0 && s3.measured <= 1,
      `${arm.id}: ${s3.measured}`,
    );
  }
  // One point of the learning curve per evaluation, per arm, the SSM arms drawn too.
  const curve = outcome.figures.find((f) => f.id === "mask-error-curve")!;
  const drawn = c.arms.length + c.ssmArms.length;
  assertEquals(curve.data.length, drawn * (c.steps / c.evalEvery));
  const labels = new Set(curve.data.map((d) => d.arm));
  for (const arm of c.ssmArms) assert(labels.has(arm.label), arm.label);
  assert(curve.caption.includes("judged by no check"));
  const byPos = outcome.figures.find((f) => f.id === "error-by-position")!;
  assertEquals(byPos.data.length, drawn * c.task.items);
});
