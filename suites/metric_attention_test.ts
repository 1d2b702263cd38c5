import { assert, assertEquals, assertLess } from "@std/assert";
import { CHAR_ALPHABET } from "../fixtures/char_corpus.ts";
import { openEngine } from "../runner/engine.ts";
import { smokeRun } from "./harness.ts";
import { metricAttention } from "./metric_attention.ts";
import { LM_ARMS, lmData, METRIC_LM, ngramLoss } from "./metric_lm.ts";

Deno.test("MT1–MT5 reach their expected verdicts; the LM half runs behind its gate", async () => {
  const engine = await openEngine("portable");
  const outcome = await smokeRun(metricAttention, engine);
  const arithmetic = outcome.checks.filter((c) => c.evidence !== "trained");
  for (const c of arithmetic) assert(c.matches, `${c.id}: ${c.actual} (${c.measured})`);
  const refuted = outcome.checks.filter((c) => c.claimed === "pass").map((c) => c.id);
  assertEquals(refuted, ["MT4-readme", "MT5"]);
  assertEquals(
    outcome.checks.map((c) => `${c.id} ${c.evidence}`).slice(-3),
    ["MT3-models constructed", "MT6-gate trained", "MT6 trained"],
  );
  // The smoke models (3 steps) cannot beat a bigram model: MT6 is inconclusive behind the gate.
  const byId = Object.fromEntries(outcome.checks.map((c) => [c.id, c]));
  assertEquals(byId["MT6-gate"].actual, "fail");
  assertEquals(byId["MT6"].actual, "inconclusive");
  const curve = outcome.figures.find((f) => f.id === "lm-validation-loss")!;
  assertEquals(curve.data.length, LM_ARMS.length); // one evaluation, after the last step
  // Deterministic: the same seeds give the same results.
  const again = await smokeRun(metricAttention, engine);
  assertEquals(JSON.stringify(again.checks), JSON.stringify(outcome.checks));
  assertEquals(JSON.stringify(again.metrics), JSON.stringify(outcome.metrics));
});

Deno.test("the count baselines: a bigram model of the corpus beats a unigram one", () => {
  const c = METRIC_LM.smoke;
  const data = lmData("metric-attention", c);
  assertEquals(data.valid.length, data.validRows * (c.context + 1));
  const V = CHAR_ALPHABET.length;
  const unigram = ngramLoss(data, c.context, 1, V);
  const bigram = ngramLoss(data, c.context, 2, V);
  assertLess(bigram, unigram);
  assertLess(unigram, Math.log(V));
  // The induction rows repeat their first half.
  const w = c.context + 1;
  const half = c.context / 2;
  for (let r = 0; r < c.inductionRows; r++) {
    for (let j = 0; j < half; j++) {
      assertEquals(data.induction[r * w + half + j], data.induction[r * w + j]);
    }
  }
});
