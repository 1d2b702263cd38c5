import { assert, assertEquals } from "@std/assert";
import { phonebookExampleLength } from "../fixtures/phonebook.ts";
import { openEngine } from "../runner/engine.ts";
import { smokeRun } from "./harness.ts";
import { CONFIGS, phonebookRetrieval, PILOTS } from "./phonebook_retrieval.ts";

Deno.test("at the smoke budget no arm learns the lookup: the gate fails, the rest is inconclusive", async () => {
  const outcome = await smokeRun(phonebookRetrieval, await openEngine("portable"));
  assertEquals(outcome.checks.map((x) => [x.id, x.actual]), [
    ["J8-gate", "fail"],
    ["J8-HA", "inconclusive"],
    ["J8-mamba", "inconclusive"],
    ["J8-decay-mamba", "inconclusive"],
    ["J8-mamba-2x", "inconclusive"],
    ["J8-decay-mamba-2x", "inconclusive"],
    ["J8-lstm", "inconclusive"],
    ["J8-decay-lstm", "inconclusive"],
    ["J8-smallest-vs-largest", "inconclusive"],
    ["J8", "inconclusive"],
  ]);
  // The largest GSSM the smoke profile trains is Mamba 2×.
  assert(outcome.checks.find((x) => x.id === "J8-smallest-vs-largest")!.metric.includes("2×"));
  const c = CONFIGS.smoke;
  // Every arm × every book size, one line per arm with its state in the legend.
  const fig = outcome.figures[0];
  assertEquals(fig.data.length, Object.keys(c.train).length * c.evalEntries.length);
  assert(fig.data.some((d) => String(d.arm).includes("bits per token")));
  assert(fig.data.some((d) => String(d.arm).includes("466,944 bits")));
  assertEquals(fig.spans, [{ from: 4, to: 8, label: "training" }]);
  assertEquals(fig.rules?.map((r) => r.value), [70]);
  // Each digit apart: a panel per arm, a line per digit; no number is exact unless each digit is.
  const digits = outcome.figures[1];
  assertEquals(digits.id, "digit-accuracy");
  assertEquals(digits.column?.field, "arm");
  assertEquals(digits.data.length, Object.keys(c.train).length * c.evalEntries.length * 4);
  const m = outcome.metrics as {
    accuracy: Record<string, number[][]>;
    digitAccuracy: Record<string, number[][][]>;
  };
  for (const id of Object.keys(c.train)) {
    const [exact, perDigit] = [m.accuracy[id][0], m.digitAccuracy[id][0]];
    assertEquals(perDigit.length, c.evalEntries.length);
    perDigit.forEach((d, k) => {
      assertEquals(d.length, 4);
      assert(d.every((a) => a >= exact[k] && a <= 1), `${id}: ${d} against ${exact[k]}`);
    });
  }
});

Deno.test("every profile's context holds its longest training book, and its evaluation reaches 3×", () => {
  for (const c of Object.values(CONFIGS)) {
    assert(phonebookExampleLength(c.trainMaxEntries) <= c.context + 1);
    for (const L of [c.gateEntries, c.trainMaxEntries, c.checkEntries, c.decayFrom, c.decayTo]) {
      assert(c.evalEntries.includes(L), `${L}`);
    }
    assert(c.gateEntries >= c.trainMinEntries && c.gateEntries <= c.trainMaxEntries);
    assert(Math.max(...c.evalEntries) >= 3 * c.trainMaxEntries);
    // Median verdicts over an odd number of seeds (the gap and ratio margins need one).
    assert(c.seeds % 2 === 1);
    assert("hard-alibi" in c.train);
  }
});

Deno.test("quick trains the full profile's Hard-ALiBi models only; its pilot checks that half", () => {
  assertEquals(CONFIGS.quick.train, { "hard-alibi": CONFIGS.full.train["hard-alibi"] });
  assertEquals(Object.keys(CONFIGS.full.train), [
    "hard-alibi",
    "nope",
    "mamba",
    "mamba-2x",
    "lstm",
  ]);
  // Without a GSSM the run has no comparison, so neither the GSSM checks nor J8 itself.
  assertEquals(Object.keys(PILOTS.quick!.checks), ["J8-gate", "J8-HA"]);
  assertEquals(PILOTS.full, undefined, "the full profile is not piloted");
});
