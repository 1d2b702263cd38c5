import { assertEquals } from "@std/assert";
import { runGssmCopy, storePrefixGssm } from "./store_prefix_gssm.ts";

Deno.test("the store-s GSSM is right on exactly D^(s−L) of all strings, from D^s states", () => {
  const D = 2, L = 5, s = 3;
  const m = storePrefixGssm(D, L, s);
  let correct = 0;
  const states = new Set<number>();
  for (let code = 0; code < D ** L; code++) {
    const x = Array.from({ length: L }, (_, i) => Math.floor(code / D ** i) % D);
    const { outputs, promptState } = runGssmCopy(m, x, D);
    assertEquals(outputs.slice(0, s), x.slice(0, s));
    states.add(promptState);
    if (outputs.every((y, i) => y === x[i])) correct++;
  }
  assertEquals(correct, D ** s); // accuracy D^s/D^L
  assertEquals(states.size, D ** s);
});
