/**
 * The hash-based copying transformer of Jelassi et al. 2024, "Repeat After Me", Theorem 2.3
 * (§2.2; CLAIMS.md §1.3): a depth-2 transformer whose weights are **set by hand, not trained**,
 * built as an ONNX graph and run by ONNX Runtime. With n-gram hashes it copies every string
 * without a repeated n-gram, so its copy error is at most p_ngram (Lemma 2.4: < L²·D⁻ⁿ).
 *
 * Tokens (fixtures/copy_task.ts): letters 0..D−1, BOS = D, COPY = D+1, EOS = D+2, PAD = D+3.
 * Hash symbols: the D letters and one boundary symbol ⊥ shared by BOS and COPY, so ⟨COPY⟩ is
 * aligned with ⟨BOS⟩; EOS and PAD embed to 0 (they only follow the answer).
 *
 * The n-gram ending at position q is the list of symbols at q, q−1, …, q−n+1, cut after the first
 * ⊥ (slots past it are blank). Example, n = 3, `$abca|ab…`: the 3-gram ending at `c` is (c, b, a),
 * at `b` it is (b, a, ⊥), at `|` it is (⊥). Blank slots make the first outputs work: the query
 * at `|`, (⊥), equals the key of the first letter (the n-gram before it, at `$`, is (⊥)).
 *
 * Layer 1 (hashing): n Hard-ALiBi heads with windows m = 2..n+1 and zero query/key weights, so
 * head m averages the embeddings of the last m positions: A_m. With A_1 = the embedding itself
 * (the residual; a window-1 head would be the identity), the token m−1 positions back is exactly
 * m·A_m − (m−1)·A_{m−1} (for positions before the sequence start the difference is garbage, but
 * such slots lie past the ⟨BOS⟩ boundary and are blanked). The embedding is b + 1 numbers, a ±1
 * code of the symbol in b = ⌈log₂(D+1)⌉ bits and a ⊥ flag, so every width is O(n log D) as in
 * Thm 2.3. The MLP (ReLUs) turns the per-offset embeddings into the query code (n-gram ending
 * here: offsets 0..n−1) and the key code (n-gram ending at the previous position: offsets 1..n),
 * n·b numbers each, cleaned to exact ±1 and blanked (0) past a ⊥. Keys of ⊥ positions (and of
 * position 0) are blank.
 *
 * Layer 2 (lookup): one head, score β·⟨q_i, k_j⟩ + γ·(i − j) on j ≤ i. ⟨q, k⟩ is b·(number of
 * non-blank query slots) exactly when k agrees with q on every non-blank slot (then k = q), and at
 * least 2 less otherwise; β is large enough that any mismatch loses to the whole position term,
 * and the position term (ALiBi with slope −γ) makes the **earliest** exact match win (γ = 32:
 * the next match gets weight e^−32). The value is the one-hot of the token at j, so the logits are
 * the token that followed the first occurrence of the current n-gram.
 *
 * Teacher-forced on `$ x | x`, the prediction after `| x₁…x_k` is the letter after the first
 * occurrence of (x_k, …, x_1, ⊥) or (x_k … x_{k−n+1}); it is x_{k+1} unless that n-gram of x also
 * occurs earlier with another successor, so every error needs a repeated n-gram of x. The paper's
 * appendix (its own boundary handling) was not available; this construction is ours. After the
 * last letter a unique final n-gram has no exact match (the key at ⟨COPY⟩ is blank), so the
 * output there (where EOS belongs) is unspecified; the copy score covers the letters only
 * (copyEvalBatch's mask).
 *
 * {@linkcode hashCopyReference} is the same algorithm in plain TypeScript.
 * @module
 */
import { Graph, staticShape, type Value } from "../onnx/graph.ts";
import {
  add,
  argMax,
  concat,
  gather,
  matMul,
  mul,
  neg,
  oneHot,
  relu,
  reshape,
  slice,
  softmax,
  sub,
  transpose,
  unsqueeze,
} from "../onnx/ops.ts";
import { alibiBias, hardAlibiBias } from "../onnx/attention_bias.ts";
import { type Engine, Session, tensor } from "../onnx/runtime.ts";

/** Shape of the constructed model. */
export interface HashCopyConfig {
  /** Length of the hashed n-grams = number of Hard-ALiBi heads in layer 1 (1..8). */
  n: number;
  /** Alphabet size, 2..26 (vocabulary D + 4). */
  D: number;
}

/** Preference for earlier matches in layer 2: the next equal match gets weight e^−γ. */
const GAMMA = 32;
/** Margin (in score units) by which any n-gram mismatch must lose. */
const MARGIN = 64;

/** Validates a config; RangeError naming the field and value. */
export function checkHashCopyConfig(c: HashCopyConfig): void {
  if (!Number.isInteger(c.n) || c.n < 1 || c.n > 8) {
    throw new RangeError(
      `Cannot build a hash-copy transformer as n must be an integer from 1 to 8: ` +
        `current value is ${c.n}`,
    );
  }
  if (!Number.isInteger(c.D) || c.D < 2 || c.D > 26) {
    throw new RangeError(
      `Cannot build a hash-copy transformer as D must be an integer from 2 to 26: ` +
        `current value is ${c.D}`,
    );
  }
}

/** Bits per hashed symbol: ⌈log₂(D + 1)⌉ (D letters and ⊥). */
export function hashCopyBits(D: number): number {
  return Math.ceil(Math.log2(D + 1));
}

/**
 * Layer-2 inverse temperature β for sequences of T tokens: a one-bit mismatch costs 2β, which
 * must exceed the largest position term γ·(T − 1) by {@linkcode MARGIN}.
 */
export function hashCopyBeta(T: number): number {
  return (GAMMA * (T - 1) + MARGIN) / 2;
}

/**
 * Embedding [V, b+1]: the ±1 code of the symbol (bit i of its index: 1 → +1, 0 → −1; ⊥ has
 * index D) and a ⊥ flag. Letters → (code(a), 0); BOS and COPY → (code(⊥), 1); EOS and PAD → 0.
 */
function embeddingTable(D: number): Float32Array {
  const b = hashCopyBits(D);
  const w = b + 1;
  const table = new Float32Array((D + 4) * w);
  const put = (token: number, symbol: number) => {
    for (let i = 0; i < b; i++) table[token * w + i] = (symbol >> i) & 1 ? 1 : -1;
  };
  for (let a = 0; a < D; a++) put(a, a);
  for (const bnd of [D, D + 1]) { // BOS, COPY → ⊥
    put(bnd, D);
    table[bnd * w + b] = 1;
  }
  return table;
}

/** Offset extraction [n+1, n+1]: o_0 = A_1, o_k = (k+1)·A_{k+1} − k·A_k. */
function offsetMatrix(n: number): Float32Array {
  const m = new Float32Array((n + 1) * (n + 1));
  m[0] = 1;
  for (let k = 1; k <= n; k++) {
    m[k * (n + 1) + k] = k + 1;
    m[k * (n + 1) + k - 1] = -k;
  }
  return m;
}

/**
 * Cut counts [n+1, n] from the ⊥ flags of offsets 0..n to slots 0..n−1: query slot s (offset s)
 * is blank after a ⊥ at an offset < s; key slot s (offset s + 1) after a ⊥ at an offset ≤ s
 * (offset 0 is the key's own token: ⊥ positions have no key).
 */
function cutMatrix(n: number, inclusive: boolean): Float32Array {
  const m = new Float32Array((n + 1) * n);
  for (let o = 0; o <= n; o++) {
    for (let s = 0; s < n; s++) if (o < s || (inclusive && o === s)) m[o * n + s] = 1;
  }
  return m;
}

/** Hard 0/1 of a ≈0/1 value h: relu(2h − ½) − relu(2h − 3/2) (0 for h ≤ ¼, 1 for h ≥ ¾). */
function step(h: Value): Value {
  const twice = mul(h, 2);
  return sub(relu(sub(twice, 0.5)), relu(sub(twice, 1.5)));
}

/**
 * A slot's ±1 code x, cleaned to ±1 (up to float rounding), or 0 when cut ≥ 1 (a ⊥ came before the slot; |x| ≤ 1
 * there, including the garbage of offsets before the sequence start):
 * step(x − 2·cut) − step(−x − 2·cut).
 */
function cleanCode(x: Value, cut: Value): Value {
  const twoCut = mul(cut, 2);
  return sub(step(sub(x, twoCut)), step(sub(neg(x), twoCut)));
}

/**
 * Logits [B, T, D+4] of the constructed model for token ids [B, T] (int32 or int64) in the graph
 * of `ids`. Rows must start with BOS (positions before it do not exist for the hash).
 */
export function hashCopyLogits(cfg: HashCopyConfig, ids: Value): Value {
  checkHashCopyConfig(cfg);
  const { n, D } = cfg;
  const g = ids.graph;
  const [B, T] = staticShape(ids, "build the hash-copy transformer");
  const V = D + 4;
  const bits = hashCopyBits(D);
  const w = bits + 1; // embedding: ±1 symbol code and ⊥ flag

  const e = gather(g.constant(embeddingTable(D), [V, w]), ids); // [B, T, w]

  // Layer 1: heads with windows 2..n+1; zero query/key weights, so scores = Hard-ALiBi bias and
  // each head is a uniform average over its window.
  const bias1 = new Float32Array(n * T * T); // [n, T, T]
  for (let h = 0; h < n; h++) bias1.set(hardAlibiBias(T, h + 2), h * T * T);
  const attn1 = softmax(g.constant(bias1, [n, T, T])); // [n, T, T]
  const eCols = reshape(transpose(e, [1, 0, 2]), [T, B * w]); // [T, B·w]
  const heads = matMul(attn1, eCols); // [n, T, B·w]: A_2..A_{n+1}
  const means = concat([unsqueeze(eCols, [0]), heads], 0); // [n+1, T, B·w]: A_1..A_{n+1}

  // Layer-1 MLP, first (linear) half: per-offset embeddings and the ⊥ counts before each slot.
  const offsets = matMul(
    g.constant(offsetMatrix(n), [n + 1, n + 1]),
    reshape(means, [n + 1, T * B * w]),
  ); // [n+1, T·B·w]: o_0..o_n
  const o = transpose(reshape(offsets, [n + 1, T, B, w]), [2, 1, 0, 3]); // [B, T, n+1, w]
  const bnd = transpose(slice(o, [bits], [w], [3]), [0, 1, 3, 2]); // [B, T, 1, n+1]: ⊥ flags
  const queryCut = matMul(bnd, g.constant(cutMatrix(n, false), [n + 1, n])); // [B, T, 1, n]
  const keyCut = matMul(bnd, g.constant(cutMatrix(n, true), [n + 1, n])); // [B, T, 1, n]
  const qRaw = slice(o, [0, 0], [n, bits], [2, 3]); // [B, T, n, b]: offsets 0..n−1
  const kRaw = slice(o, [1, 0], [n + 1, bits], [2, 3]); // [B, T, n, b]: offsets 1..n
  // ReLUs and the second (linear) half: clean ±1 slot codes, blank past a ⊥.
  const q = reshape(cleanCode(qRaw, transpose(queryCut, [0, 1, 3, 2])), [B, T, n * bits]);
  const k = reshape(cleanCode(kRaw, transpose(keyCut, [0, 1, 3, 2])), [B, T, n * bits]);

  // Layer 2: hard lookup of the earliest key equal to the query; value = the key's token.
  const query = mul(q, hashCopyBeta(T)); // [B, T, n·b]: W_Q = β·I
  const scores = matMul(query, transpose(k, [0, 2, 1])); // [B, T, T]
  const bias2 = g.constant(alibiBias(T, -GAMMA), [T, T]); // +γ·(i − j): earlier keys win ties
  const attn2 = softmax(add(scores, bias2)); // [B, T, T]
  return matMul(attn2, oneHot(ids, V)); // [B, T, V]
}

/**
 * The model as ONNX bytes: input `ids` int32 [batch, T]; outputs `logits` [batch, T, D+4] and
 * `next` (int64 argmax, the teacher-forced prediction of the token after each position).
 */
export function hashCopyModel(cfg: HashCopyConfig, batch: number, T: number): Uint8Array {
  const g = new Graph(`hash_copy_n${cfg.n}_D${cfg.D}`);
  const ids = g.input("ids", "int32", [batch, T]);
  const logits = hashCopyLogits(cfg, ids);
  g.output(logits, "logits");
  g.output(argMax(logits, { axis: -1 }), "next");
  return g.toModel();
}

/** Options of {@linkcode hashCopyPredict}. */
export interface HashCopyRunOptions {
  /** ORT intra-op threads. */
  threads: number;
  /** The engine the session runs on (this model uses none of the custom ops). */
  engine: Engine;
  /** Rows per session run; default keeps the layer-2 scores near 2^24 floats. */
  chunk?: number;
}

/**
 * Teacher-forced next-token predictions [rows, T] of the constructed model (ONNX Runtime) for
 * token rows [rows, T] (e.g. `copyEvalBatch(...).input`), run in chunks of rows; the last chunk is
 * padded with copies of its first row.
 */
export async function hashCopyPredict(
  cfg: HashCopyConfig,
  tokens: Int32Array,
  T: number,
  opts: HashCopyRunOptions,
): Promise<Int32Array> {
  if (tokens.length % T !== 0) {
    throw new TypeError(`Cannot split ${tokens.length} tokens into rows of T = ${T}`);
  }
  const rows = tokens.length / T;
  const chunk = Math.min(rows, opts.chunk ?? Math.max(1, Math.floor(2 ** 24 / (T * T))));
  // One session per call (not cached): every (n, D, T) is evaluated once, and the Hard-ALiBi
  // constants grow as n·T².
  const session = await Session.create(hashCopyModel(cfg, chunk, T), {
    threads: opts.threads,
    engine: opts.engine,
  });
  const out = new Int32Array(rows * T);
  try {
    for (let r0 = 0; r0 < rows; r0 += chunk) {
      const take = Math.min(chunk, rows - r0);
      const ids = new Int32Array(chunk * T);
      ids.set(tokens.subarray(r0 * T, (r0 + take) * T));
      for (let r = take; r < chunk; r++) ids.set(tokens.subarray(r0 * T, (r0 + 1) * T), r * T);
      const res = await session.run({ ids: tensor("int32", ids, [chunk, T]) }, ["next"]);
      const next = res.next.data as BigInt64Array; // [chunk, T]
      for (let t = 0; t < take * T; t++) out[r0 * T + t] = Number(next[t]);
    }
  } finally {
    await session.release();
  }
  return out;
}

/**
 * The hash-copy algorithm in plain TypeScript, on one token row starting with BOS: for each
 * position i (up to the first EOS or PAD), the token at the earliest position p ≤ i whose
 * preceding n-gram (ending at p − 1) equals the n-gram ending at i, with the ⊥ cut described in
 * the module doc; −1 when there is none (the model's output is then unspecified) and at and after
 * the first EOS or PAD.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { hashCopyReference } from "./hash_copy_transformer.ts";
 *
 * // D = 4, n = 2: $ a b a c | a b a c  (BOS 4, COPY 5)
 * const row = [4, 0, 1, 0, 2, 5, 0, 1, 0, 2];
 * const pred = hashCopyReference(row, 2, 4);
 * // in the prompt no n-gram has occurred before (−1) …
 * assertEquals(Array.from(pred.subarray(0, 5)), [-1, -1, -1, -1, -1]);
 * // … from COPY on every letter is copied; after the last c, "a c" has no key (−1)
 * assertEquals(Array.from(pred.subarray(5)), [0, 1, 0, 2, -1]);
 * ```
 */
export function hashCopyReference(tokens: ArrayLike<number>, n: number, D: number): Int32Array {
  checkHashCopyConfig({ n, D });
  if (tokens.length === 0 || tokens[0] !== D) {
    throw new TypeError(
      `Cannot run the hash-copy algorithm as a row must start with BOS (${D}): current value is ${
        tokens[0]
      }`,
    );
  }
  const T = tokens.length;
  const base = D + 2; // symbol digits: letters, ⊥ = D, blank = D + 1
  const isBoundary = (t: number) => t === D || t === D + 1;
  let end = 0; // positions before the first EOS or PAD
  while (end < T && tokens[end] !== D + 2 && tokens[end] !== D + 3) {
    const t = tokens[end];
    if (!Number.isInteger(t) || t < 0 || t > D + 1) {
      throw new RangeError(`Cannot run the hash-copy algorithm on token ${t} at position ${end}`);
    }
    end++;
  }
  // gram[q] = the n-gram ending at q as Σ symbol_s·base^s, blank after the first ⊥.
  const gram = new Float64Array(end);
  for (let q = 0; q < end; q++) {
    let value = 0;
    let scale = 1;
    let cut = false;
    for (let s = 0; s < n; s++) {
      let digit = D + 1;
      if (!cut) {
        const t = tokens[q - s];
        cut = isBoundary(t);
        digit = cut ? D : t;
      }
      value += digit * scale;
      scale *= base;
    }
    gram[q] = value;
  }
  const first = new Map<number, number>(); // key (n-gram ending at p − 1) → earliest p
  const out = new Int32Array(T).fill(-1);
  for (let i = 0; i < end; i++) {
    if (i > 0 && !isBoundary(tokens[i]) && !first.has(gram[i - 1])) first.set(gram[i - 1], i);
    const p = first.get(gram[i]);
    if (p !== undefined) out[i] = tokens[p];
  }
  return out;
}
