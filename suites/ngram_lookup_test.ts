import { assert, assertEquals, assertThrows } from "@std/assert";
import { openEngine } from "../runner/engine.ts";
import { smokeRun } from "./harness.ts";
import { CONFIGS, lookupArms, ngramLookup } from "./ngram_lookup.ts";

Deno.test("at the smoke budget no arm learns the lookup: the gate fails, the rest is inconclusive", async () => {
  const outcome = await smokeRun(ngramLookup, await openEngine("portable"));
  assertEquals(outcome.checks.map((x) => [x.id, x.actual]), [
    ["J7-gate", "fail"],
    ["J7-suffix-HA", "inconclusive"],
    ["J7-suffix-mamba", "inconclusive"],
    ["J7-prefix-GSSM", "inconclusive"],
    ["J7-prefix-vs-NoPE", "inconclusive"],
    ["J7", "inconclusive"],
  ]);
  const c = CONFIGS.smoke;
  // Every trained (layout, arm) pair × every length, in one two-panel figure.
  const fig = outcome.figures[0];
  const pairs = Object.keys(c.train.suffix).length + Object.keys(c.train.prefix).length;
  assertEquals(fig.data.length, pairs * c.evalLengths.length);
  assertEquals(new Set(fig.data.map((d) => d.key)), new Set(["suffix key", "prefix key"]));
  assert(fig.data.some((d) => String(d.arm).includes("bits per token")));
  assertEquals(fig.spans, [{ from: c.trainMinLen, to: c.trainMaxLen, label: "training" }]);
});

Deno.test("every profile's context holds its longest training example", () => {
  for (const c of Object.values(CONFIGS)) {
    // prefix: |s| + n + k + 4 tokens, a row holds context + 1
    assert(c.trainMaxLen + 3 + 3 + 4 <= c.context + 1);
    for (const L of [c.gateLength, c.trainMaxLen, c.checkLength]) assert(c.evalLengths.includes(L));
    assert(c.gateLength >= c.trainMinLen && c.gateLength <= c.trainMaxLen);
  }
});

Deno.test("a profile naming an unknown arm is refused with the known ids", () => {
  const c = CONFIGS.smoke;
  const bad = { ...c, train: { ...c.train, prefix: { mambo: { steps: 3, lr: 1e-3 } } } };
  const err = assertThrows(() => lookupArms(bad), RangeError);
  assert(err.message.includes("mambo") && err.message.includes("hard-alibi"));
  assertEquals(lookupArms(c).map((a) => a.id), ["hard-alibi", "nope", "mamba"]);
});
