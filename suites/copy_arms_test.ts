import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  armBudget,
  ARMS,
  armsForVocab,
  armsWithIds,
  COPY_TRAINING,
  copyArm,
  GSSM_LSTM,
  GSSM_MAMBA,
  gssmStateBits,
  rowCopied,
  scoredHits,
} from "./copy_arms.ts";
import { PHONEBOOK_VOCAB } from "../fixtures/phonebook.ts";
import { lstmParamCount } from "../models/lstm.ts";
import { mambaParamCount } from "../models/mamba.ts";

Deno.test("the arms are parameter-matched within 15% (CLAIMS.md §1.4), but for Mamba 2×", () => {
  const primary = ARMS[0].paramCount;
  for (const a of ARMS.filter((a) => a.id !== "mamba-2x")) {
    assert(Math.abs(a.paramCount / primary - 1) <= 0.15, `${a.id}: ${a.paramCount} vs ${primary}`);
  }
  // The positional variants of the primary model differ only in position handling.
  assertEquals(ARMS.filter((a) => a.paramCount === primary).map((a) => a.id), [
    "hard-alibi",
    "alibi",
    "rope",
  ]);
});

Deno.test("an arm trains with its own budget where the profile names one, else the default", () => {
  const c = {
    ...COPY_TRAINING.full,
    steps: 100,
    lr: 0.1,
    armBudgets: { rope: { steps: 7, lr: 0.5 } },
  };
  assertEquals(armBudget(c, "rope"), { steps: 7, lr: 0.5 });
  assertEquals(armBudget(c, "alibi"), { steps: 100, lr: 0.1 });
  for (const p of Object.values(COPY_TRAINING)) {
    for (const id of Object.keys(p.armBudgets)) assert(ARMS.some((a) => a.id === id), id);
  }
});

Deno.test("every profile trains known arms, Hard-ALiBi first", () => {
  for (const c of Object.values(COPY_TRAINING)) {
    assertEquals(c.arms[0], "hard-alibi");
    for (const id of c.arms) assertEquals(copyArm(id).id, id);
    // A packed training example of the longest string must fit the context.
    assert(2 * c.trainMaxLen + 3 <= c.context + 1);
  }
  assertThrows(
    () => copyArm("gru"),
    RangeError,
    "hard-alibi, nope, alibi, rope, mamba, mamba-2x, lstm",
  );
  assertEquals(ARMS.map((a) => a.family), [
    "transformer",
    "transformer",
    "transformer",
    "transformer",
    "gssm",
    "gssm",
    "gssm",
  ]);
});

Deno.test("a row counts as copied when every masked position is predicted right, hit by hit", () => {
  const rows = {
    input: new Int32Array(6),
    target: Int32Array.of(1, 2, 3, 1, 2, 3),
    lossMask: Float32Array.of(0, 1, 1, 0, 1, 1),
  };
  const pred = BigInt64Array.of(9n, 2n, 3n, 9n, 2n, 4n);
  assertEquals(rowCopied(pred, rows, 0, 3), true);
  assertEquals(rowCopied(pred, rows, 1, 3), false);
  // Predictions of a chunk: row 1 of the rows is row 0 of the chunk.
  assertEquals(rowCopied(pred.subarray(3), rows, 1, 3, 0), false);
  assertEquals(rowCopied(pred, rows, 1, 3, 0), true);
  assertEquals(scoredHits(pred, rows, 1, 3), [true, false]);
  assertEquals(scoredHits(pred, rows, 1, 3, 0), [true, true]);
  assertEquals(scoredHits(pred, { ...rows, lossMask: new Float32Array(6) }, 0, 3), []);
});

Deno.test("the GSSM arms match the Hard-ALiBi arm's size within 15%, and their state bits", () => {
  const primary = ARMS[0].paramCount;
  for (
    const [id, n] of [["mamba", mambaParamCount(GSSM_MAMBA)], ["lstm", lstmParamCount(GSSM_LSTM)]]
  ) {
    assert(Math.abs((n as number) / primary - 1) <= 0.15, `${id}: ${n} vs ${primary}`);
  }
  // Mamba: 3 layers × (128·16 scan + 3·128 conv) floats; LSTM: h and c of 112.
  assertEquals(gssmStateBits().map((s) => s.bits), [233_472, 7_168]);
});

Deno.test("the copy arms keep the configs their cached models are keyed by", () => {
  // The configs before `armsForVocab`, written out in their key order.
  const base = { vocab: 30, dModel: 64, heads: 8, layers: 2, mlp: 256, tiedHead: true };
  const before: Record<string, unknown> = {
    "hard-alibi": {
      ...base,
      position: "hard-alibi",
      hardAlibiWindows: [1, 2, 3, 4, null, null, null, null],
    },
    nope: { ...base, position: "nope", layers: 4, dModel: 48, mlp: 192 },
    alibi: { ...base, position: "alibi" },
    rope: { ...base, position: "rope", ropeFraction: 1 },
    mamba: { vocab: 30, dModel: 64, layers: 3, layer: "mamba", dState: 16 },
    lstm: { vocab: 30, hidden: 112, layers: 1 },
  };
  for (const [id, config] of Object.entries(before)) {
    assertEquals(JSON.stringify(copyArm(id).config), JSON.stringify(config), id);
  }
  assertEquals(copyArm("mamba").config, GSSM_MAMBA);
  assertEquals(copyArm("lstm").config, GSSM_LSTM);
});

Deno.test("the phone-book arms differ from the copy arms in their vocabulary only", () => {
  const arms = armsForVocab(PHONEBOOK_VOCAB.size);
  assertEquals(arms.map((a) => a.id), ARMS.map((a) => a.id));
  arms.forEach((a, i) => {
    const copy = ARMS[i].config as { vocab: number };
    assertEquals(copy.vocab, 30);
    assertEquals(a.config, { ...copy, vocab: PHONEBOOK_VOCAB.size });
    assertEquals(a.label, ARMS[i].label);
    assertEquals(a.stateBits, ARMS[i].stateBits);
    // The tied embedding grows by 16 rows of the arm's width.
    assertEquals(a.paramCount - ARMS[i].paramCount, 16 * a.paramShapes[0].shape[1], a.id);
  });
  assertEquals(arms.map((a) => a.paramCount), [
    103_040,
    115_392,
    103_040,
    103_040,
    101_376,
    199_680,
    106_400,
  ]);
});

Deno.test("Mamba 2× has twice the blocks of the Mamba arm: about twice its parameters and state", () => {
  const [mamba, twice] = [copyArm("mamba"), copyArm("mamba-2x")];
  assertEquals(twice.config, { ...GSSM_MAMBA, layers: 6 });
  assertEquals(twice.paramCount, 198_656);
  const ratio = twice.paramCount / mamba.paramCount;
  assert(ratio > 1.9 && ratio < 2, `${ratio}`);
  assertEquals(twice.stateBits, 2 * mamba.stateBits!);
});

Deno.test("armsWithIds keeps the arms' order, drops the others and refuses an unknown id", () => {
  const arms = armsForVocab(PHONEBOOK_VOCAB.size);
  assertEquals(armsWithIds(arms, ["lstm", "hard-alibi", "lstm"]).map((a) => a.id), [
    "hard-alibi",
    "lstm",
  ]);
  assertEquals(armsWithIds(arms, []), []);
  assertThrows(() => armsWithIds(arms, ["mambo"]), RangeError, "current value is mambo");
});
