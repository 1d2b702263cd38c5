import { assert, assertEquals } from "@std/assert";
import { openEngine } from "../runner/engine.ts";
import { copyArm } from "./copy_arms.ts";
import { CONFIGS, copyLengthGeneralisation } from "./copy_length_generalisation.ts";
import { smokeRun } from "./harness.ts";

Deno.test("every profile evaluates the training length, 2× and 4× it", () => {
  for (const c of Object.values(CONFIGS)) {
    for (const m of [1, 2, 4]) assert(c.evalLengths.includes(m * c.trainMaxLen), `${m}×`);
  }
});

Deno.test("at the smoke budget the gate fails and the length checks are inconclusive", async () => {
  const c = CONFIGS.smoke;
  const outcome = await smokeRun(copyLengthGeneralisation, await openEngine("portable"));
  const [gate, ...behind] = outcome.checks;
  assertEquals(gate.id, "J4-gate");
  // 3 steps teach no arm to copy: the gate fails (a mismatch a full run would report)…
  assertEquals([gate.actual, gate.matches], ["fail", false]);
  assert(gate.measured !== null && gate.measured < c.gate, `gate measured ${gate.measured}`);
  // …and every check behind it is inconclusive, naming the arms that did not learn.
  assertEquals(behind.map((b) => b.id), [
    "J4-HA-2x",
    "J4-HA-4x",
    "J4-mamba-2x",
    "J4-lstm-2x",
    "J4-gap",
    "J4-HA-best",
  ]);
  const arms = c.arms.map((id) => `${copyArm(id).label} (${c.steps} steps)`).join(", ");
  const reason =
    `INCONCLUSIVE: ${arms} did not learn to copy strings of the training length on every seed`;
  for (const b of behind) {
    assertEquals([b.actual, b.matches], ["inconclusive", false], b.id);
    assert(b.detail.endsWith(` ${reason}`), `${b.id}: ${b.detail}`);
  }
  // The accuracy path still measures every arm at every length: arm → seed → length.
  const accuracy = outcome.metrics.accuracy as Record<string, number[][]>;
  assertEquals(Object.keys(accuracy), c.arms);
  for (const perSeed of Object.values(accuracy)) {
    assertEquals(perSeed.length, c.seeds);
    for (const a of perSeed.flat()) assert(a >= 0 && a <= 1, `accuracy ${a}`);
  }
  // The gap check bounds a difference of the median seeds' proportions.
  const gap = behind.find((b) => b.id === "J4-gap")!;
  assert(gap.margin && gap.margin.lower <= gap.measured! && gap.measured! <= gap.margin.upper);
});
