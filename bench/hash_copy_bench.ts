/**
 * Teacher-forced evaluation of the constructed hash-copy transformer (Thm 2.3,
 * `models/hash_copy_transformer.ts`) in ONNX Runtime: 1,000 uniform strings of length 1,000,
 * D = 26, n = 8 hashing heads (p_ngram ≈ L²/2·26⁻⁸ ≈ 2.4e-6, so it copies them all), rows
 * `$ x | x` of 2,002 tokens, 2 threads. Each iteration is 1,000 strings: strings/s = 1000 × iter/s.
 * Session creation (the n·T² Hard-ALiBi constants) is outside the timed loop.
 *
 * `deno bench -A bench/hash_copy_bench.ts`
 * @module
 */
import { copyEvalBatch } from "../fixtures/copy_task.ts";
import { Prng } from "../fixtures/prng.ts";
import { hashCopyModel } from "../models/hash_copy_transformer.ts";
import { PORTABLE_ENGINE, Session, tensor } from "../onnx/runtime.ts";

const D = 26;
const N_HEADS = 8;
const L = 1000;
const STRINGS = 1000;
const T = 2 * L + 2;
const CHUNK = 4; // rows per run: the layer-2 scores are CHUNK·T² floats
const THREADS = 2;

const batch = copyEvalBatch(new Prng(1), { count: STRINGS, length: L, context: T, D });
const session = await Session.create(hashCopyModel({ n: N_HEADS, D }, CHUNK, T), {
  threads: THREADS,
  engine: PORTABLE_ENGINE,
});

/** Runs every string once; returns how many were copied exactly. */
async function evaluate(): Promise<number> {
  let copied = 0;
  for (let r0 = 0; r0 < STRINGS; r0 += CHUNK) {
    const ids = batch.input.slice(r0 * T, (r0 + CHUNK) * T);
    const res = await session.run({ ids: tensor("int32", ids, [CHUNK, T]) }, ["next"]);
    const next = res.next.data as BigInt64Array; // [CHUNK, T]
    for (let r = 0; r < CHUNK; r++) {
      let ok = true;
      for (let k = 0; k < L && ok; k++) {
        ok = Number(next[r * T + L + 1 + k]) === batch.input[(r0 + r) * T + 1 + k];
      }
      if (ok) copied++;
    }
  }
  return copied;
}

Deno.bench({
  name: `hash-copy transformer: ${STRINGS} strings × L ${L} (n ${N_HEADS}, D ${D})`,
  n: 3,
  warmup: 1,
  async fn() {
    const copied = await evaluate();
    if (copied < STRINGS - 5) throw new Error(`Only ${copied} of ${STRINGS} strings copied`);
  },
});
