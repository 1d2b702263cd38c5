import { assert, assertEquals, assertThrows } from "@std/assert";
import { copyEvalBatch, duplicateNgramEvalBatch } from "../fixtures/copy_task.ts";
import { Prng } from "../fixtures/prng.ts";
import { Graph } from "../onnx/graph.ts";
import { PORTABLE_ENGINE } from "../onnx/runtime.ts";
import {
  hashCopyBeta,
  hashCopyBits,
  hashCopyLogits,
  hashCopyPredict,
  hashCopyReference,
} from "./hash_copy_transformer.ts";

/** Whether some n-gram of x occurs twice. */
function repeated(x: ArrayLike<number>, n: number): boolean {
  const seen = new Set<string>();
  for (let i = 0; i + n <= x.length; i++) {
    const key = Array.from({ length: n }, (_, k) => x[i + k]).join(",");
    if (seen.has(key)) return true;
    seen.add(key);
  }
  return false;
}

/** Row r of a [rows, T] batch. */
function rowOf(a: Int32Array, T: number, r: number): Int32Array {
  return a.subarray(r * T, (r + 1) * T);
}

Deno.test("hashCopyReference() copies x unless an n-gram repeats", () => {
  for (const [n, D, L] of [[1, 4, 3], [2, 4, 8], [3, 2, 6], [4, 26, 40]]) {
    const T = 2 * L + 2;
    const b = copyEvalBatch(new Prng(n * 31 + L), { count: 300, length: L, context: T, D });
    let clean = 0;
    for (let r = 0; r < 300; r++) {
      const row = rowOf(b.input, T, r);
      const x = row.subarray(1, L + 1);
      const pred = hashCopyReference(row, n, D);
      const copied = x.every((v, k) => pred[L + 1 + k] === v);
      if (!repeated(x, n)) {
        assert(copied, `n ${n} D ${D}: string without a repeat must be copied`);
        clean++;
      }
      if (!copied) assert(repeated(x, n));
      // The first min(n, L) answer letters come from the ⊥-aligned prefix and are always right.
      for (let k = 0; k < Math.min(n, L); k++) assertEquals(pred[L + 1 + k], x[k]);
    }
    assert(clean > 0);
  }
});

Deno.test("hashCopyReference() follows the first occurrence of the current n-gram", () => {
  // D = 4 (BOS 4, COPY 5), n = 1: $ a b a c | a b a c
  const row = [4, 0, 1, 0, 2, 5, 0, 1, 0, 2];
  const pred = hashCopyReference(row, 1, 4);
  // after "| a b a" the 1-gram a first occurred at 1, followed by b: the wrong letter (c wanted);
  // after the last c nothing matches (the key at COPY is blank): −1
  assertEquals(Array.from(pred.subarray(5)), [0, 1, 0, 1, -1]);
  // n = 2 separates "a b" from "b a": copied
  assertEquals(Array.from(hashCopyReference(row, 2, 4).subarray(5, 9)), [0, 1, 0, 2]);
  // $ a | a . *: the query at | finds the key of the first letter; the a after | has no key
  // (its only earlier successor would be |, a ⊥ position without a key); EOS and PAD end the row
  assertEquals(Array.from(hashCopyReference([4, 0, 5, 0, 6, 7], 1, 4)), [-1, -1, 0, -1, -1, -1]);
});

Deno.test("hashCopyReference() and the config reject bad input", () => {
  assertThrows(() => hashCopyReference([0, 1, 5], 2, 4), TypeError, "must start with BOS");
  assertThrows(() => hashCopyReference([4, 9], 2, 4), RangeError, "token 9");
  assertThrows(
    () => hashCopyReference([4, 0], 0, 4),
    RangeError,
    "n must be an integer from 1 to 8",
  );
  assertThrows(() => hashCopyReference([27, 0], 2, 27), RangeError, "D must be");
});

Deno.test("hashCopyLogits() has static shapes and O(n log D) widths", () => {
  const g = new Graph("hc");
  const ids = g.input("ids", "int32", [3, 10]);
  const logits = hashCopyLogits({ n: 3, D: 4 }, ids);
  assertEquals(logits.shape, [3, 10, 8]);
  assertEquals(hashCopyBits(4), 3); // 4 letters + ⊥ = 5 symbols
  assertEquals(hashCopyBits(26), 5);
  // a one-bit mismatch (2β) beats the whole position term γ·(T − 1) by the margin
  assertEquals(2 * hashCopyBeta(100) - 32 * 99, 64);
});

Deno.test("the ONNX model predicts what the algorithm predicts, at every position", async () => {
  for (const [n, D, L, count] of [[1, 4, 6, 64], [2, 4, 12, 64], [3, 2, 20, 48], [5, 26, 60, 16]]) {
    const T = 2 * L + 2;
    const b = copyEvalBatch(new Prng(7 * n + D), { count, length: L, context: T, D });
    const pred = await hashCopyPredict({ n, D }, b.input, T, {
      threads: 2,
      engine: PORTABLE_ENGINE,
      chunk: 24,
    });
    let wrong = 0;
    for (let r = 0; r < count; r++) {
      const ref = hashCopyReference(rowOf(b.input, T, r), n, D);
      for (let i = 0; i < T; i++) {
        if (ref[i] >= 0) assertEquals(pred[r * T + i], ref[i], `n ${n} D ${D} row ${r} pos ${i}`);
      }
      if (ref.subarray(L + 1, 2 * L + 1).some((v, k) => v !== b.input[r * T + 1 + k])) wrong++;
    }
    if (n <= 3) assert(wrong > 0, "short n-grams must produce some errors to compare");
  }
});

Deno.test("on duplicated n-grams the model makes the algorithm's mistake", async () => {
  // Two copies of an n-gram with different successors: with a hash no longer than the copies,
  // the letter after the second copy is looked up at the first occurrence of its n-gram (usually
  // the first copy, whose successor differs), so both must miscopy it the same way.
  const D = 4, L = 16, T = 2 * L + 2;
  for (const [dup, n] of [[3, 2], [3, 3], [4, 2], [2, 4]]) {
    const count = 40;
    const b = duplicateNgramEvalBatch(new Prng(dup * 10 + n), {
      count,
      length: L,
      n: dup,
      context: T,
      D,
    });
    const pred = await hashCopyPredict({ n, D }, b.input, T, {
      threads: 2,
      engine: PORTABLE_ENGINE,
    });
    let mistakes = 0;
    for (let r = 0; r < count; r++) {
      const ref = hashCopyReference(rowOf(b.input, T, r), n, D);
      for (let i = L + 1; i <= 2 * L; i++) {
        assertEquals(pred[r * T + i], ref[i], `row ${r} pos ${i}`);
      }
      const j = b.positions[2 * r + 1]; // the second copy is s[j..j+dup)
      const at = L + 1 + j + dup; // predicts s[j + dup], the letter after the second copy
      if (ref[at] !== b.input[r * T + 1 + j + dup]) mistakes++;
    }
    if (n <= dup) {
      assert(mistakes >= 30, `dup ${dup} n ${n}: only ${mistakes} of ${count} miscopied`);
    }
  }
});
