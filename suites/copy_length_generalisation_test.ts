import { assert, assertEquals } from "@std/assert";
import { ARMS, CONFIGS } from "./copy_length_generalisation.ts";

Deno.test("the transformer arms are parameter-matched", () => {
  const counts = new Set(ARMS.map((a) => a.paramCount));
  assertEquals(counts.size, 1, JSON.stringify(ARMS.map((a) => [a.id, a.paramCount])));
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
