// Fused attention on a transformer layer's packed projections, claimbench ops BiasAttention and
// BiasAttentionGrad (their ONNX function definitions are in onnx/custom/attention.ts).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "../include/attention_rows.h"
#include "../include/ort_abi.h"
#include "../include/registry.h"
#include "../include/simd.h"

namespace cb {
namespace {

// ---------------------------------------------------------------------------------------------
// Fused attention on the packed projections of a transformer layer:
//
//   BiasAttention(QKV [B, T, 3C], Bias [H, T, T], Scale) -> Y [B, T, C]
//   BiasAttentionGrad(dY [B, T, C], QKV, Bias, Scale) -> dQKV [B, T, 3C]
//
// QKV's columns are q | k | v, each head-major (C = H·hs): q of head h at token t is
// QKV[b, t, h·hs .. h·hs + hs). Y = softmax(Scale·q·kᵀ + Bias[h])·v per head, merged back to
// [B, T, C] the same way; Scale is a float scalar. One task per (b, h) keeps that head's keys
// and values and a row of weights in L1; nothing of size T × T outlives the task, and no
// head-major copy of Q, K, V or Y is made.
//
// Key j of query row i is skipped where Bias[h, i, j] < kMaskedBias (the models' masks use
// −1e9): its weight exp(s − max) underflows to exactly 0 in float32 as long as the scores stay
// below ~1e7 in magnitude, so skipping it changes no bit of Y and no gradient. A row with no key
// above the threshold is computed in full, as the composition would. Within a row, keys from the
// first to the last unmasked one are computed (one run for causal, Hard-ALiBi and ALiBi masks).
//
// Arithmetic per row, in this order (float32 unless noted): s_j = Σ_d (q_d·Scale)·k_jd
// (d ascending) + Bias_ij; m = max s; e_j = exp(s_j − m) (Exp in simd.h); z = Σ e_j (double, by
// position mod 4: Accumulate in simd.h); p_j = e_j·float(1/z); y = Σ_j p_j·v_j as two partial
// sums over alternate keys, added at the end. The gradient recomputes p the same way, then
// dp_j = Σ_d dy_d·v_jd, c = float(Σ_j p_j·dp_j) (double, by position mod 4),
// ds_j = p_j·(dp_j − c), dq = (Σ_j ds_j·k_j)·Scale; after all rows, dv_j = Σ_i p_ij·dy_i and
// dk_j = (Σ_i ds_ij·q_i)·Scale over the rows that computed key j (partial sums as for y).
// Vector lanes only ever hold different elements, so the SSE2 and AVX2 paths and every thread
// count give the same bits. The AVX2 and AVX-512 paths run causal heads (CausalHead) and
// Hard-ALiBi's windowed rows (BandRows) with one query row per lane rather than one key per
// lane, in the same order per element (see there); SSE2 keeps one row at a time, the reference
// the tests compare with.

struct AttentionJob {
  int64_t B = 0, H = 0, T = 0, hs = 0;
  int64_t ld = 0;  // scratch rows' length: T rounded up to 16, plus one vector of 16 past it
  float scale = 1.0f;
  const float* qkv = nullptr;   // [B, T, 3C]
  const float* bias = nullptr;  // [H, T, T]
  const float* dy = nullptr;    // [B, T, C]; gradient only
  float* y = nullptr;           // forward: Y [B, T, C]; gradient: dQKV [B, T, 3C]
  // [H·T] each: the first and last key computed per query row; the first and last query row
  // that computes each key.
  const int32_t* lo = nullptr;
  const int32_t* hi = nullptr;
  const int32_t* ilo = nullptr;
  const int32_t* ihi = nullptr;
  // Per head, whether it is causal and runs CausalHead (AVX2 and AVX-512 paths only); then
  // Bias[h]ᵀ [T, tp], tp = T rounded up to 16 (zeros past T).
  const uint8_t* causal = nullptr;
  const float* bias_t = nullptr;
  int64_t tp = 0;
  Simd simd = kSse2;
};

// A task's scratch: Kᵀ and Vᵀ [hs, ld] (zero padded), Q·Scale [hs], and the weights P and
// their gradient dS [T, ld] (one row of P in the forward).
struct AttentionScratch {
  float* kt;
  float* vt;
  float* qs;
  float* p;
  float* ds;
  float* qst;  // [hs, tp]: Q·Scale and dY transposed, for banded rows and causal heads
  float* dyt;
  float* tile;   // [hs, 16]: a block's sums, dims × rows (or keys)
  float* ptile;  // [tp, 16] each: a block's P and dS, keys × rows
  float* stile;
};

// Query row i of one head: its weights p (into P's row i for the gradient, else P's row 0),
// and for the gradient ds = p·(dp − c) into dS's row i. Returns where p went.
template <typename V>
CB_INLINE const float* RowWeights(const AttentionJob& job, const AttentionScratch& w,
                                  const float* q, const float* bias, const float* dy, int64_t i,
                                  int64_t l, int64_t u) {
  const int64_t T = job.T, hs = job.hs, ld = job.ld, C = job.H * hs, rs = 3 * C;
  const bool grad = dy != nullptr;
  float* p = w.p + (grad ? i * ld : 0);
  float* qs = w.qs;
  for (int64_t d = 0; d < hs; ++d) qs[d] = q[i * rs + d] * job.scale;
  RowDots<V>(qs, w.kt, ld, hs, l, u, p);
  SoftmaxRow<V>(p, bias + i * T, T * T - i * T, l, u);
  if (!grad) return p;
  // dp_j = dy_i · v_j (in dS's row), c = Σ_j p_j·dp_j, ds_j = p_j·(dp_j − c).
  float* ds = w.ds + i * ld;
  RowDots<V>(dy + i * C, w.vt, ld, hs, l, u, ds);
  SoftmaxGradRow<V>(p, ds, l, u);
  return p;
}

template <typename V>
CB_INLINE const float* RowWeightsAnyWidth(const AttentionJob& job, const AttentionScratch& w,
                                          const float* q, const float* bias, const float* dy,
                                          int64_t i, int64_t l, int64_t u) {
  // Short rows (windowed heads) waste most of a 16-lane vector: they go 8 lanes at a time.
  if (sizeof(V) > sizeof(V8) && u - l < 8) return RowWeights<V8>(job, w, q, bias, dy, i, l, u);
  return RowWeights<V>(job, w, q, bias, dy, i, l, u);
}

// Banded rows. Past its first rows, a Hard-ALiBi head with window n ≤ kBandKeys gives every
// query row i the keys i − n + 1 .. i: too few to fill a vector along the keys. W such rows go
// through RowWeights' arithmetic together, one row per lane: lane r of the vectors below holds
// row i0 + r's score, weight or gradient for its key l0 + r + t. Each element still takes the
// same IEEE operations in the same order (dot products over d in two chains, the max, Exp, the
// double sums by key position mod 4, 1/z, c), so the bits are RowWeights' (the tests compare
// with the SSE2 path, which never bands). The scores need Q·Scale and dY transposed, [hs, T].
constexpr int64_t kBandKeys = 8;

// Whether rows i .. i + W − 1 form a band: equal key counts n ≤ kBandKeys, starts one key apart.
CB_INLINE bool IsBand(const int32_t* lo, const int32_t* hi, int64_t i, int64_t W) {
  const int32_t n = hi[i] - lo[i];
  if (n >= kBandKeys) return false;
  for (int64_t r = 1; r < W; ++r) {
    if (lo[i + r] != lo[i] + r || hi[i + r] - lo[i + r] != n) return false;
  }
  return true;
}

// s[t] lane r = Σ_d a[d·lda + r] · bt[d·ldb + t + r], over even and odd d as DotGroups.
template <typename V, int N>
CB_INLINE void BandDots(const float* a, int64_t lda, const float* bt, int64_t ldb, int64_t hs,
                        V* s) {
  V even[N], odd[N];
#pragma GCC unroll 8
  for (int t = 0; t < N; ++t) even[t] = odd[t] = Splat<V>(0.0f);
  int64_t d = 0;
  for (; d + 1 < hs; d += 2) {
    const V ae = Load<V>(a + d * lda);
    const V ao = Load<V>(a + (d + 1) * lda);
    const float* be = bt + d * ldb;
    const float* bo = be + ldb;
#pragma GCC unroll 8
    for (int t = 0; t < N; ++t) {
      even[t] = even[t] + Load<V>(be + t) * ae;
      odd[t] = odd[t] + Load<V>(bo + t) * ao;
    }
  }
  if (d < hs) {
    const V ae = Load<V>(a + d * lda);
#pragma GCC unroll 8
    for (int t = 0; t < N; ++t) even[t] = even[t] + Load<V>(bt + d * ldb + t) * ae;
  }
#pragma GCC unroll 8
  for (int t = 0; t < N; ++t) s[t] = even[t] + odd[t];
}

// Rows i0 .. i0 + W − 1 of a band of N keys from l0 (row i0 + r's keys from l0 + r): their
// weights into P's rows (the forward's single row in turn) and, for the gradient, ds into dS's
// rows; then Y's row or dQ's row of each, as the general path does.
template <typename V, typename VC, int N>
CB_INLINE void BandRows(const AttentionJob& job, const AttentionScratch& w, const float* k,
                        const float* v, const float* bias, int64_t i0, int64_t l0, float* out,
                        int64_t os) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  typedef typename Doubles<V>::Type DV;
  const int64_t T = job.T, hs = job.hs, ld = job.ld, rs = 3 * job.H * hs;
  const bool grad = job.dy != nullptr;
  V p[N];
  BandDots<V, N>(w.qst + i0, job.tp, w.kt + l0, ld, hs, p);
  float tile[N * W];
  for (int64_t r = 0; r < W; ++r) {
    const float* b = bias + (i0 + r) * T + l0 + r;
    for (int t = 0; t < N; ++t) tile[t * W + r] = b[t];
  }
  V m = Splat<V>(-HUGE_VALF);
#pragma GCC unroll 8
  for (int t = 0; t < N; ++t) {
    p[t] = p[t] + Load<V>(tile + t * W);
    m = p[t] > m ? p[t] : m;
  }
  DV acc[4] = {};
#pragma GCC unroll 8
  for (int t = 0; t < N; ++t) {
    p[t] = Exp(p[t] - m);
    acc[t % 4] += __builtin_convertvector(p[t], DV);
  }
  const V inv = InverseSum<V>(acc);
#pragma GCC unroll 8
  for (int t = 0; t < N; ++t) Store(tile + t * W, p[t] * inv);
  if (!grad) {
    for (int64_t r = 0; r < W; ++r) {
      for (int t = 0; t < N; ++t) w.p[l0 + r + t] = tile[t * W + r];
      WeightedRows<VC, false>(w.p, 1, v, rs, hs, l0 + r, l0 + r + N - 1, 1.0f, out + (i0 + r) * os);
    }
    return;
  }
  V dp[N];
  BandDots<V, N>(w.dyt + i0, job.tp, w.vt + l0, ld, hs, dp);
  DV acc2[4] = {};
#pragma GCC unroll 8
  for (int t = 0; t < N; ++t) {
    acc2[t % 4] += __builtin_convertvector(Load<V>(tile + t * W) * dp[t], DV);
  }
  const V c = SumToFloat<V>(acc2);
  float dtile[N * W];
#pragma GCC unroll 8
  for (int t = 0; t < N; ++t) Store(dtile + t * W, Load<V>(tile + t * W) * (dp[t] - c));
  for (int64_t r = 0; r < W; ++r) {
    float* pr = w.p + (i0 + r) * ld + l0 + r;
    float* dr = w.ds + (i0 + r) * ld + l0 + r;
    for (int t = 0; t < N; ++t) pr[t] = tile[t * W + r], dr[t] = dtile[t * W + r];
    WeightedRows<VC, true>(w.ds + (i0 + r) * ld, 1, k, rs, hs, l0 + r, l0 + r + N - 1, job.scale,
                      out + (i0 + r) * os);
  }
}

template <typename V, typename VC>
CB_INLINE void BandRowsOfWidth(const AttentionJob& job, const AttentionScratch& w, const float* k,
                               const float* v, const float* bias, int64_t i0, int64_t l0,
                               int64_t n, float* out, int64_t os) {
  switch (n) {
    case 1: return BandRows<V, VC, 1>(job, w, k, v, bias, i0, l0, out, os);
    case 2: return BandRows<V, VC, 2>(job, w, k, v, bias, i0, l0, out, os);
    case 3: return BandRows<V, VC, 3>(job, w, k, v, bias, i0, l0, out, os);
    case 4: return BandRows<V, VC, 4>(job, w, k, v, bias, i0, l0, out, os);
    case 5: return BandRows<V, VC, 5>(job, w, k, v, bias, i0, l0, out, os);
    case 6: return BandRows<V, VC, 6>(job, w, k, v, bias, i0, l0, out, os);
    case 7: return BandRows<V, VC, 7>(job, w, k, v, bias, i0, l0, out, os);
    default: return BandRows<V, VC, 8>(job, w, k, v, bias, i0, l0, out, os);
  }
}

// Causal heads (every row i has keys 0..i: NoPE, ALiBi, RoPE, Hard-ALiBi's unwindowed heads) on
// the AVX2 and AVX-512 paths go W query rows per vector, as banded rows do, through a whole
// block of rows i0 .. i0 + W − 1 at once: scores for keys 0 .. i0 + W − 1, lanes whose row ends
// before a key set to −inf (as RowWeights' padding); the max, Exp and the sum by key mod 4 per
// lane; then Y's or dQ's rows as sums over keys with one row per lane. The gradient then stores
// the block's P and dS rows × keys, so that dK's and dV's sums go one key per lane. Each element
// takes the general path's operations in its order (sums over keys in two chains by key parity,
// dot products over d in two chains), so the bits are the same; the per-row steps (max, 1/z, c)
// are shared by W rows.


// kHs: the head size where known at compile time (its Q·Scale and dY vectors then stay in
// registers over a block's keys), else 0. Sizes 16 and 8 (the copy and phone-book transformers',
// d 64 over 8 heads) are compiled so; with 8 the phone book's Hard-ALiBi step ran 3–5% faster.
template <typename V, typename VC, int kHs>
CB_INLINE void CausalHead(const AttentionJob& job, int64_t task, const AttentionScratch& w) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t T = job.T, hs = kHs > 0 ? kHs : job.hs, ld = job.ld, h = task % job.H;
  const int64_t b = task / job.H;
  const int64_t C = job.H * hs, rs = 3 * C, tp = job.tp;
  const float* q = job.qkv + b * T * rs + h * hs;
  const float* k = q + C;
  const float* v = q + 2 * C;
  const float* bt = job.bias_t + h * T * tp;  // Bias[h]ᵀ [T, tp]
  const bool grad = job.dy != nullptr;
  const float* dy = grad ? job.dy + b * T * C + h * hs : nullptr;
  float* out = job.y + (grad ? b * T * rs : b * T * C) + h * hs;
  const int64_t os = grad ? rs : C;
  // Rows past T are zeros: finite, and never stored.
  TransposeRows<V, true>(q, rs, T, hs, job.scale, w.qst, tp);
  if (grad) TransposeRows<V, false>(dy, C, T, hs, 1.0f, w.dyt, tp);
  for (int64_t i0 = 0; i0 < T; i0 += W) {
    const int64_t nk = std::min(i0 + W, T);  // keys of the block's rows
    const int64_t rows = std::min(W, T - i0);
    float* pt = w.ptile;  // [nk, W]: the block's P, keys × rows
    CausalBlockWeights<V, kHs>(w.qst + i0, tp, k, rs, hs, bt, tp, i0, nk, pt);
    if (!grad) {
      BlockCombine<V, false>(pt, W, v, rs, hs, i0, nk, 1.0f, w.tile, W);
      StoreTransposed<V>(w.tile, hs, rows, out + i0 * os, os);
      continue;
    }
    float* st = w.stile;  // the block's dS, keys × rows as P's
    CausalBlockGrads<V, kHs>(w.dyt + i0, tp, v, rs, hs, i0, nk, pt, st);
    BlockCombine<V, true>(st, W, k, rs, hs, i0, nk, job.scale, w.tile, W);  // dQ's rows
    StoreTransposed<V>(w.tile, hs, rows, out + i0 * os, os);
    TileToRows<V>(pt, nk, i0, rows, w.p, ld);  // P and dS rows × keys, for dK and dV
    TileToRows<V>(st, nk, i0, rows, w.ds, ld);
  }
  if (!grad) return;
  for (int64_t j0 = 0; j0 < T; j0 += W) {  // dK's and dV's rows, W keys at a time
    const int64_t keys = std::min(W, T - j0);
    KeyBlockCombine<V, true>(w.ds, ld, q, rs, hs, j0, T, job.scale, w.tile);
    StoreTransposed<V>(w.tile, hs, keys, out + j0 * os + C, os);
    KeyBlockCombine<V, false>(w.p, ld, dy, C, hs, j0, T, 1.0f, w.tile);
    StoreTransposed<V>(w.tile, hs, keys, out + j0 * os + 2 * C, os);
  }
}

// V: the vectors along the keys (scores, weights); VC: along a head's dims (the sums over keys
// or rows). Every element is computed the same way at any width.
template <typename V, typename VC>
CB_INLINE void AttentionHead(const AttentionJob& job, int64_t task, const AttentionScratch& w) {
  if constexpr (sizeof(V) >= sizeof(V8)) {
    if (job.causal[task % job.H]) {
      if (job.hs == 16) return CausalHead<V, VC, 16>(job, task, w);
      if (job.hs == 8) return CausalHead<V, VC, 8>(job, task, w);
      return CausalHead<V, VC, 0>(job, task, w);
    }
  }
  const int64_t T = job.T, hs = job.hs, ld = job.ld, h = task % job.H, b = task / job.H;
  const int64_t C = job.H * hs, rs = 3 * C;  // row stride of QKV
  const float* q = job.qkv + b * T * rs + h * hs;
  const float* k = q + C;
  const float* v = q + 2 * C;
  const float* bias = job.bias + h * T * T;
  const int32_t* lo = job.lo + h * T;
  const int32_t* hi = job.hi + h * T;
  const bool grad = job.dy != nullptr;
  TransposeRows<V, false>(k, rs, T, hs, 1.0f, w.kt, ld);  // zeros past T
  if (grad) TransposeRows<V, false>(v, rs, T, hs, 1.0f, w.vt, ld);
  // Forward: Y's rows; gradient: dQ's rows in dQKV, and dY's.
  float* out = job.y + (grad ? b * T * rs : b * T * C) + h * hs;
  const int64_t os = grad ? rs : C;
  const float* dy = grad ? job.dy + b * T * C + h * hs : nullptr;
  constexpr int64_t W = sizeof(V) / sizeof(float);
  bool transposed = false;  // Q·Scale and dY, for banded rows
  for (int64_t i = 0; i < T; ++i) {
    const int64_t l = lo[i], u = hi[i];
    if (W >= 8 && i + W <= T && IsBand(lo, hi, i, W)) {
      if (!transposed) {
        if constexpr (W >= 8) {
          TransposeRows<V, true>(q, rs, T, hs, job.scale, w.qst, job.tp);
          if (grad) TransposeRows<V, false>(dy, C, T, hs, 1.0f, w.dyt, job.tp);
        }
        transposed = true;
      }
      if constexpr (W >= 8) BandRowsOfWidth<V, VC>(job, w, k, v, bias, i, l, u - l + 1, out, os);
      i += W - 1;
      continue;
    }
    const float* p = RowWeightsAnyWidth<V>(job, w, q, bias, dy, i, l, u);
    float* o = out + i * os;
    if (!grad) {
      WeightedRows<VC, false>(p, 1, v, rs, hs, l, u, 1.0f, o);
      continue;
    }
    WeightedRows<VC, true>(w.ds + i * ld, 1, k, rs, hs, l, u, job.scale, o);  // dQ's row
  }
  if (!grad) return;
  const int32_t* ilo = job.ilo + h * T;
  const int32_t* ihi = job.ihi + h * T;
  for (int64_t j = 0; j < T; ++j) {
    WeightedRows<VC, true>(w.ds + j, ld, q, rs, hs, ilo[j], ihi[j], job.scale, out + j * os + C);
    WeightedRows<VC, false>(w.p + j, ld, dy, C, hs, ilo[j], ihi[j], 1.0f, out + j * os + 2 * C);
  }
}

void AttentionHeadSse2(const AttentionJob& job, int64_t task, const AttentionScratch& w) {
  AttentionHead<V4, V4>(job, task, w);
}

__attribute__((target("avx2"))) void AttentionHeadAvx2(const AttentionJob& job, int64_t task,
                                                        const AttentionScratch& w) {
  AttentionHead<V8, V8>(job, task, w);
}

// 16 keys per vector; a head's dims in vectors of 16 where they fill them, else of 8.
__attribute__((target("avx512f"))) void AttentionHeadAvx512(const AttentionJob& job, int64_t task,
                                                            const AttentionScratch& w) {
  if (job.hs % 16 == 0) {
    AttentionHead<V16, V16>(job, task, w);
  } else {
    AttentionHead<V16, V8>(job, task, w);
  }
}


void RunAttentionTask(void* data, size_t task) {
  const AttentionJob& job = *static_cast<const AttentionJob*>(data);
  const int64_t T = job.T, hs = job.hs, ld = job.ld;
  const int64_t rows = job.dy != nullptr ? T : 1;  // P's rows (the forward keeps one)
  float* buf = ThreadScratch(
      static_cast<size_t>(2 * hs * ld + (hs + 15) / 16 * 16 + 2 * rows * ld + 2 * hs * job.tp + 16 * hs +
                          2 * 16 * job.tp));
  AttentionScratch w{};
  w.kt = buf;
  w.vt = buf + hs * ld;
  w.qs = w.vt + hs * ld;
  w.p = w.qs + (hs + 15) / 16 * 16;
  w.ds = w.p + rows * ld;
  w.qst = w.ds + rows * ld;
  w.dyt = w.qst + hs * job.tp;
  w.tile = w.dyt + hs * job.tp;
  w.ptile = w.tile + 16 * hs;
  w.stile = w.ptile + 16 * job.tp;
  // RowDots reads Kᵀ's and Vᵀ's padding, which must be finite; P and dS are written before
  // they are read.
  for (int64_t d = 0; d < 2 * hs; ++d) {
    for (int64_t j = T; j < ld; ++j) w.kt[d * ld + j] = 0.0f;
  }
  if (job.simd == kAvx512) {
    AttentionHeadAvx512(job, static_cast<int64_t>(task), w);
  } else if (job.simd == kAvx2) {
    AttentionHeadAvx2(job, static_cast<int64_t>(task), w);
  } else {
    AttentionHeadSse2(job, static_cast<int64_t>(task), w);
  }
}


// Sets job's causal flags, tp and Bias ᵀ for CausalHead (after the ranges), in storage that
// must outlive the job.
void CausalHeads(AttentionJob* job, std::vector<uint8_t>* causal, std::vector<float>* bias_t) {
  const int64_t H = job->H, T = job->T;
  job->tp = (T + 15) / 16 * 16;
  causal->assign(static_cast<size_t>(H), 0);
  for (int64_t h = 0; job->simd != kSse2 && h < H; ++h) {
    bool is = true;
    for (int64_t i = 0; is && i < T; ++i) is = job->lo[h * T + i] == 0 && job->hi[h * T + i] == i;
    if (!is) continue;
    (*causal)[h] = 1;
    bias_t->resize(static_cast<size_t>(H * T * job->tp), 0.0f);
    float* t = bias_t->data() + h * T * job->tp;
    const float* src = job->bias + h * T * T;
    for (int64_t i = 0; i < T; ++i) {
      for (int64_t j = 0; j < T; ++j) t[j * job->tp + i] = src[i * T + j];
    }
  }
  job->causal = causal->data();
  job->bias_t = bias_t->data();
}

OrtStatus* ComputeAttention(OrtKernelContext* ctx, bool grad, Simd simd) {
  const char* name = grad ? "BiasAttentionGrad" : "BiasAttention";
  const size_t first = grad ? 1 : 0;  // BiasAttentionGrad's inputs start with dY
  Shape xs, bs, ss, dys;
  AttentionJob job;
  const float* scale = nullptr;
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 0, "QKV", &xs, &job.qkv));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 1, "Bias", &bs, &job.bias));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 2, "Scale", &ss, &scale));
  if (grad) CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "dY", &dys, &job.dy));
  if (bs.rank != 3 || bs.dims[1] != bs.dims[2] || bs.dims[0] < 1) {
    return Error(std::string("Cannot run ") + name + " as Bias must be [H, T, T]: current shape is " +
                 ShapeString(bs));
  }
  job.H = bs.dims[0];
  job.T = bs.dims[1];
  if (xs.rank != 3 || xs.dims[1] != job.T || xs.dims[2] % (3 * job.H) != 0) {
    return Error(std::string("Cannot run ") + name + " as QKV must be [B, " +
                 std::to_string(job.T) + ", 3·" + std::to_string(job.H) +
                 "·hs] for Bias " + ShapeString(bs) + ": current shape is " + ShapeString(xs));
  }
  job.B = xs.dims[0];
  job.hs = xs.dims[2] / (3 * job.H);
  const int64_t C = job.H * job.hs;
  if (grad && (dys.rank != 3 || dys.dims[0] != job.B || dys.dims[1] != job.T || dys.dims[2] != C)) {
    return Error(std::string("Cannot run ") + name + " as dY must be [" + std::to_string(job.B) +
                 ", " + std::to_string(job.T) + ", " + std::to_string(C) +
                 "]: current shape is " + ShapeString(dys));
  }
  int64_t scale_count = 1;
  for (size_t i = 0; i < ss.rank; ++i) scale_count *= ss.dims[i];
  if (scale_count != 1) {
    return Error(std::string("Cannot run ") + name + " as Scale must hold one value: shape is " +
                 ShapeString(ss));
  }
  job.scale = *scale;
  job.simd = simd;
  job.ld = (job.T + 15) / 16 * 16 + 16;  // whole 64-byte lines per row
  Shape ys = xs;
  if (!grad) ys.dims[2] = C;
  OrtStatus* st = MakeOutputAt(ctx, 0, ys, &job.y);
  const int64_t tasks = job.B * job.H;
  if (st != nullptr || tasks == 0 || job.T == 0 || job.hs == 0) {
    if (st == nullptr && grad) {  // nothing to compute, but dQKV must still be defined
      int64_t n = 1;
      for (size_t i = 0; i < ys.rank; ++i) n *= ys.dims[i];
      for (int64_t e = 0; e < n; ++e) job.y[e] = 0.0f;
    }
    return st;
  }
  const size_t rows = static_cast<size_t>(job.H * job.T);
  int32_t* ranges = static_cast<int32_t*>(std::malloc(sizeof(int32_t) * 4 * rows));
  if (ranges == nullptr) return Error(std::string("Cannot run ") + name + ": out of memory");
  KeyRanges(job.bias, job.H, job.T, ranges);
  job.lo = ranges;
  job.hi = ranges + rows;
  job.ilo = ranges + 2 * rows;
  job.ihi = ranges + 3 * rows;
  std::vector<uint8_t> causal;
  std::vector<float> bias_t;
  CausalHeads(&job, &causal, &bias_t);
  if (tasks == 1 || g_api.KernelContext_ParallelFor == nullptr) {
    for (int64_t t = 0; t < tasks; ++t) RunAttentionTask(&job, static_cast<size_t>(t));
  } else {
    st = g_api.KernelContext_ParallelFor(ctx, RunAttentionTask, static_cast<size_t>(tasks), 0,
                                         &job);
  }
  std::free(ranges);
  return st;
}

OrtStatus* ComputeBiasAttention(OrtKernelContext* ctx, Simd simd) {
  return ComputeAttention(ctx, false, simd);
}

OrtStatus* ComputeBiasAttentionGrad(OrtKernelContext* ctx, Simd simd) {
  return ComputeAttention(ctx, true, simd);
}

}  // namespace

CB_REGISTER_OP("BiasAttention", 3, 1, 0, ComputeBiasAttention);
CB_REGISTER_OP("BiasAttentionGrad", 4, 1, 0, ComputeBiasAttentionGrad);

}  // namespace cb
