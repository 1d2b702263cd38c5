import { assert, assertEquals } from "@std/assert";
import { armBudget, ARMS, CONFIGS } from "./copy_length_generalisation.ts";

Deno.test("the transformer arms are parameter-matched within 15% (CLAIMS.md §1.4)", () => {
  const primary = ARMS[0].paramCount;
  for (const a of ARMS) {
    assert(Math.abs(a.paramCount / primary - 1) <= 0.15, `${a.id}: ${a.paramCount} vs ${primary}`);
  }
  // The positional variants of the primary model differ only in position handling.
  assertEquals(ARMS.filter((a) => a.paramCount === primary).map((a) => a.id), [
    "hard-alibi",
    "alibi",
    "rope",
  ]);
});

Deno.test("every profile trains known arms, Hard-ALiBi first", () => {
  for (const c of Object.values(CONFIGS)) {
    assertEquals(c.arms[0], "hard-alibi");
    for (const id of c.arms) assert(ARMS.some((a) => a.id === id), id);
  }
});

Deno.test("every profile evaluates the training length, 2× and 4× it", () => {
  for (const c of Object.values(CONFIGS)) {
    for (const m of [1, 2, 4]) assert(c.evalLengths.includes(m * c.trainMaxLen), `${m}×`);
    // A packed training example of the longest string must fit the context.
    assert(2 * c.trainMaxLen + 3 <= c.context + 1);
  }
});

Deno.test("an arm trains with its own budget where the profile names one, else the default", () => {
  const c = { ...CONFIGS.full, steps: 100, lr: 0.1, armBudgets: { rope: { steps: 7, lr: 0.5 } } };
  assertEquals(armBudget(c, "rope"), { steps: 7, lr: 0.5 });
  assertEquals(armBudget(c, "alibi"), { steps: 100, lr: 0.1 });
  for (const p of Object.values(CONFIGS)) {
    for (const id of Object.keys(p.armBudgets)) assert(ARMS.some((a) => a.id === id), id);
  }
});
