import { assert } from "@std/assert";
import { CONFIGS } from "./copy_length_generalisation.ts";

Deno.test("every profile evaluates the training length, 2× and 4× it", () => {
  for (const c of Object.values(CONFIGS)) {
    for (const m of [1, 2, 4]) assert(c.evalLengths.includes(m * c.trainMaxLen), `${m}×`);
  }
});
