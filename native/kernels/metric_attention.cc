// Metric-tensor attention, claimbench ops MetricAttention and MetricAttentionGrad (their ONNX
// function definitions are in onnx/custom/metric_attention.ts):
//
//   MetricAttention(P [B, H, T, K], M [H, K(K+1)/2], Bias [T, T], Scale) -> Y [B, H, T, K]
//   MetricAttentionGrad(dY, P, M, Bias, Scale) -> dP [B, H, T, K], dM [H, K(K+1)/2]
//
// Per batch row b and head h, with A the dense symmetric metric of packed M[h] (row-major upper
// triangle: l walks (0,0), (0,1), …, (0,K−1), (1,1), …), Y = softmax(Scale·P·A·Pᵀ + Bias)·P.
//
// One task per (b, h). It computes Qs = (P·A)·Scale once for the head ([T, K], the "PM once per
// head"; lanes hold rows), then the scores of each query row against the head's keys (Pᵀ, kept
// transposed so that lanes hold keys), the row's softmax and its output; nothing of size T × T
// is made in the forward pass (one row of weights), and the gradient recomputes the weights and
// keeps the head's W and dS [T, T] in the task's scratch only, as native/kernels/attention.cc
// does. Causal heads on the AVX2 and AVX-512 paths go W query rows at a time, one row per lane
// (CausalBlocks, as attention.cc's CausalHead), with the same operations per element.
//
// Key j of query row i is skipped where Bias[i, j] < kMaskedBias, as in attention.cc: a weight
// exp(−1e9 + s − max) is exactly 0 in float32, so skipping it changes no bit. Each row computes
// its keys from the first to the last unmasked one (the causal mask: 0..i); when those ranges do
// not grow with the row every row computes every key.
//
// Arithmetic, float32 unless noted, every element by a fixed sequence of operations:
//   Qs_i = (Σ_k P_ik·A_k) · Scale                      (k ascending, two chains by parity)
//   s_ij = Σ_k Qs_ik·P_jk + Bias_ij                     (k ascending, two chains by parity)
//   w_ij = exp(s_ij − max_j s) · float(1/z), z = Σ_j exp(·) in double by key position mod 4
//   Y_i = Σ_j w_ij·P_j                                  (two chains by parity of j)
// and for the gradient, with dw_ij = Σ_k dY_ik·P_jk and c_i = float(Σ_j w_ij·dw_ij) (double,
// by position mod 4): ds_ij = w_ij·(dw_ij − c_i); dQ_i = (Σ_j ds_ij·P_j)·Scale;
// dP_j = (Σ_i w_ij·dY_i + Σ_i ds_ij·Qs_i) + Σ_k dQ_jk·A_k; G_bh = Σ_i P_iᵀ·dQ_i [K, K] per task,
// then G_h = Σ_b G_bh in double (b ascending) and dM[l(k, k')] = G[k][k'] + G[k'][k] off the
// diagonal (both halves of the tied pair), G[k][k] on it.
//
// Lanes hold different elements (keys, rows or dims), and every sum's order is fixed by the
// shapes, so the SSE2, AVX2 and AVX-512 paths and every thread count give the same bits.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "../include/ort_abi.h"
#include "../include/registry.h"
#include "../include/simd.h"

namespace cb {
namespace {

constexpr float kMaskedBias = -1e8f;

// Rows of a head's dims are padded to a multiple of 16 floats (every width loads whole vectors,
// the padding holds zeros); rows of keys to T rounded up to 16, plus 16.
CB_INLINE int64_t PadDims(int64_t k) { return (k + 15) / 16 * 16; }
CB_INLINE int64_t PadKeys(int64_t t) { return (t + 15) / 16 * 16 + 16; }

struct MetricJob {
  Blocks blocks;  // tasks: (b, h) pairs
  int64_t B = 0, H = 0, T = 0, K = 0;
  int64_t kp = 0;  // padded dims
  int64_t ld = 0;  // padded keys
  float scale = 1.0f;
  const float* p = nullptr;     // [B, H, T, K]
  const float* a = nullptr;     // [H, K, kp]: the dense metrics, zero padded
  const float* bias = nullptr;  // [T, T]
  const float* dy = nullptr;    // [B, H, T, K]; gradient only
  float* y = nullptr;           // forward: Y; gradient: dP
  float* g = nullptr;           // gradient: G_bh [B, H, K, kp]
  // [T] each: the first and last key of each query row; the first and last row of each key.
  const int32_t* lo = nullptr;
  const int32_t* hi = nullptr;
  const int32_t* ilo = nullptr;
  const int32_t* ihi = nullptr;
  // Whether every row i has keys 0..i (the AVX2 and AVX-512 paths then run CausalBlocks), and
  // for them Biasᵀ [T, tp], tp = T rounded up to 16 (zeros past T).
  bool causal = false;
  const float* bias_t = nullptr;
  int64_t tp = 0;
};

// out[d] = Σ_{r = r0..r1} w[r·ws] · rows[r·rs + d] for d in [d0, d0 + NV·W): two chains by the
// parity of r − r0, added at the end, then × scale where Scaled. 0 when r0 > r1.
template <typename V, int NV, bool Scaled>
CB_INLINE void WeightedRowsAt(const float* w, int64_t ws, const float* rows, int64_t rs,
                              int64_t r0, int64_t r1, int64_t d0, float scale, float* out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  V even[NV], odd[NV];
#pragma GCC unroll 4
  for (int u = 0; u < NV; ++u) even[u] = odd[u] = Splat<V>(0.0f);
  int64_t r = r0;
  for (; r + 1 <= r1; r += 2) {
    const V we = Splat<V>(w[r * ws]);
    const V wo = Splat<V>(w[(r + 1) * ws]);
    const float* re = rows + r * rs + d0;
    const float* ro = re + rs;
#pragma GCC unroll 4
    for (int u = 0; u < NV; ++u) {
      even[u] = even[u] + Load<V>(re + u * W) * we;
      odd[u] = odd[u] + Load<V>(ro + u * W) * wo;
    }
  }
  if (r == r1) {
    const V we = Splat<V>(w[r * ws]);
#pragma GCC unroll 4
    for (int u = 0; u < NV; ++u) even[u] = even[u] + Load<V>(rows + r * rs + d0 + u * W) * we;
  }
#pragma GCC unroll 4
  for (int u = 0; u < NV; ++u) {
    const V sum = even[u] + odd[u];
    Store(out + d0 + u * W, Scaled ? sum * Splat<V>(scale) : sum);
  }
}

// As WeightedRowsAt over all kp dims (a multiple of 16, so of every width).
template <typename V, bool Scaled>
CB_INLINE void WeightedRows(const float* w, int64_t ws, const float* rows, int64_t rs,
                            int64_t kp, int64_t r0, int64_t r1, float scale, float* out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  int64_t d0 = 0;
  for (; d0 + 4 * W <= kp; d0 += 4 * W) {
    WeightedRowsAt<V, 4, Scaled>(w, ws, rows, rs, r0, r1, d0, scale, out);
  }
  for (; d0 < kp; d0 += W) WeightedRowsAt<V, 1, Scaled>(w, ws, rows, rs, r0, r1, d0, scale, out);
}

// s[j] = Σ_{k < K} a[k] · bt[k·ld + j] for NC groups of W keys from j: two chains by the parity
// of k, added at the end.
template <typename V, int NC>
CB_INLINE void DotGroups(const float* a, const float* bt, int64_t ld, int64_t K, int64_t j,
                         float* s) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  V even[NC], odd[NC];
#pragma GCC unroll 4
  for (int c = 0; c < NC; ++c) even[c] = odd[c] = Splat<V>(0.0f);
  int64_t k = 0;
  for (; k + 1 < K; k += 2) {
    const V ae = Splat<V>(a[k]);
    const V ao = Splat<V>(a[k + 1]);
    const float* be = bt + k * ld + j;
    const float* bo = be + ld;
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) {
      even[c] = even[c] + Load<V>(be + c * W) * ae;
      odd[c] = odd[c] + Load<V>(bo + c * W) * ao;
    }
  }
  if (k < K) {
    const V ae = Splat<V>(a[k]);
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) even[c] = even[c] + Load<V>(bt + k * ld + j + c * W) * ae;
  }
#pragma GCC unroll 4
  for (int c = 0; c < NC; ++c) Store(s + j + c * W, even[c] + odd[c]);
}

// DotGroups over keys [lo, hi], in whole groups of W (bt's rows and s are padded past hi).
template <typename V>
CB_INLINE void RowDots(const float* a, const float* bt, int64_t ld, int64_t K, int64_t lo,
                       int64_t hi, float* s) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  int64_t j = lo;
  for (; j + 4 * W <= hi + 1; j += 4 * W) DotGroups<V, 4>(a, bt, ld, K, j, s);
  for (; j <= hi; j += W) DotGroups<V, 1>(a, bt, ld, K, j, s);
}

// s[lo, hi] = softmax(s + bias) in place: the biased scores, their maximum, e = exp(· − max),
// z = Σ e in double by position mod 4, s = e · float(1/z). The group past hi is scratch (its
// lanes are set to −inf, so exp gives 0); bias is read no further than bias[bias_end − 1].
template <typename V>
CB_INLINE void SoftmaxRow(float* s, const float* bias, int64_t bias_end, int64_t lo, int64_t hi) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const float inf = HUGE_VALF;
  V mv = Splat<V>(-inf);
  int64_t j = lo;
  for (; j + W <= hi + 1; j += W) {
    const V z = Load<V>(s + j) + Load<V>(bias + j);
    Store(s + j, z);
    mv = z > mv ? z : mv;
  }
  if (j <= hi) {
    const V b = j + W <= bias_end ? Load<V>(bias + j) : LoadTail<V>(bias + j, bias_end - j, 0.0f);
    const V z = Keep(Load<V>(s + j) + b, hi + 1 - j, -inf);
    Store(s + j, z);
    mv = z > mv ? z : mv;
  }
  const float m = MaxLane(mv);
  D4 acc = {};
  for (j = lo; j <= hi; j += W) {
    const V e = Exp(Load<V>(s + j) - m);
    Store(s + j, e);
    Accumulate(acc, e);
  }
  const V inv = Splat<V>(static_cast<float>(1.0 / SumLanes(acc)));
  for (j = lo; j <= hi; j += W) Store(s + j, Load<V>(s + j) * inv);
}

// out[(d0 + c)·os] for c < DC = Σ_k a[k·kp + d0 + c] · xt[k·xs] (k < K, two chains by the
// parity of k, added at the end), times scale where Scaled: a K × K product with one row t per
// lane (xt = row t's x, transposed). Each element takes WeightedRows' operations over A's rows
// with weights x_tk, so either gives the same bits.
template <typename V, int DC, bool Scaled>
CB_INLINE void MetricColumnsAt(const float* a, int64_t kp, const float* xt, int64_t xs, int64_t K,
                               int64_t d0, float scale, float* out, int64_t os) {
  V even[DC], odd[DC];
#pragma GCC unroll 4
  for (int c = 0; c < DC; ++c) even[c] = odd[c] = Splat<V>(0.0f);
  int64_t k = 0;
  for (; k + 1 < K; k += 2) {
    const V xe = Load<V>(xt + k * xs);
    const V xo = Load<V>(xt + (k + 1) * xs);
    const float* ae = a + k * kp + d0;
    const float* ao = ae + kp;
#pragma GCC unroll 4
    for (int c = 0; c < DC; ++c) {
      even[c] = even[c] + Splat<V>(ae[c]) * xe;
      odd[c] = odd[c] + Splat<V>(ao[c]) * xo;
    }
  }
  if (k < K) {
    const V xe = Load<V>(xt + k * xs);
#pragma GCC unroll 4
    for (int c = 0; c < DC; ++c) even[c] = even[c] + Splat<V>(a[k * kp + d0 + c]) * xe;
  }
#pragma GCC unroll 4
  for (int c = 0; c < DC; ++c) {
    const V sum = even[c] + odd[c];
    Store(out + (d0 + c) * os, Scaled ? sum * Splat<V>(scale) : sum);
  }
}

// As MetricColumnsAt for every d < K.
template <typename V, bool Scaled>
CB_INLINE void MetricColumns(const float* a, int64_t kp, const float* xt, int64_t xs, int64_t K,
                             float scale, float* out, int64_t os) {
  int64_t d0 = 0;
  for (; d0 + 4 <= K; d0 += 4) MetricColumnsAt<V, 4, Scaled>(a, kp, xt, xs, K, d0, scale, out, os);
  for (; d0 < K; ++d0) MetricColumnsAt<V, 1, Scaled>(a, kp, xt, xs, K, d0, scale, out, os);
}

// g[(k0 + c)·kp + d] = Σ_{i < T} x[i·kp + k0 + c] · rows[i·kp + d] for c < KC and d in
// [d0, d0 + W): two chains by the parity of i, added at the end (WeightedRows' operations with
// weights x's column k0 + c; KC columns at once keep 2·KC chains in flight).
template <typename V, int KC>
CB_INLINE void OuterSumsAt(const float* x, const float* rows, int64_t kp, int64_t T, int64_t k0,
                           int64_t d0, float* g) {
  V even[KC], odd[KC];
#pragma GCC unroll 4
  for (int c = 0; c < KC; ++c) even[c] = odd[c] = Splat<V>(0.0f);
  int64_t i = 0;
  for (; i + 1 < T; i += 2) {
    const V re = Load<V>(rows + i * kp + d0);
    const V ro = Load<V>(rows + (i + 1) * kp + d0);
    const float* xe = x + i * kp + k0;
    const float* xo = xe + kp;
#pragma GCC unroll 4
    for (int c = 0; c < KC; ++c) {
      even[c] = even[c] + re * Splat<V>(xe[c]);
      odd[c] = odd[c] + ro * Splat<V>(xo[c]);
    }
  }
  if (i < T) {
    const V re = Load<V>(rows + i * kp + d0);
#pragma GCC unroll 4
    for (int c = 0; c < KC; ++c) even[c] = even[c] + re * Splat<V>(x[i * kp + k0 + c]);
  }
#pragma GCC unroll 4
  for (int c = 0; c < KC; ++c) Store(g + (k0 + c) * kp + d0, even[c] + odd[c]);
}

// G = Σ_i x_iᵀ · rows_i [K, kp] (x and rows [T, kp]), as OuterSumsAt.
template <typename V>
CB_INLINE void OuterSums(const float* x, const float* rows, int64_t kp, int64_t T, int64_t K,
                         float* g) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  for (int64_t d0 = 0; d0 < kp; d0 += W) {
    int64_t k0 = 0;
    for (; k0 + 4 <= K; k0 += 4) OuterSumsAt<V, 4>(x, rows, kp, T, k0, d0, g);
    for (; k0 < K; ++k0) OuterSumsAt<V, 1>(x, rows, kp, T, k0, d0, g);
  }
}

// ---------------------------------------------------------------------------------------------
// Causal heads, one query row per lane (AVX2 and AVX-512 paths). As attention.cc's CausalHead:
// W query rows i0 .. i0 + W − 1 go through the row path's arithmetic together, lane r holding
// row i0 + r's score, weight or gradient for key j (keys past a lane's row set to −inf, so
// their weights are 0 as the row path's padding), then Y's or dQ's rows as sums over keys with
// one row per lane; the gradient stores the block's W and dS rows × keys, so that dP's sums go
// one key per lane. Every element takes the row path's operations in its order, so the bits
// are the same (the tests compare with the SSE2 path, which keeps one row at a time). The
// helpers below are attention.cc's, for the head's padded rows.

// Transposes the W × W block in a[0..W) in place (W = lanes of V): log2(W) rounds of exchanging
// halves, quarters, … between rows, two shuffles per pair of rows.
template <typename V>
CB_INLINE void TransposeBlock(V* a) {
  constexpr int W = sizeof(V) / sizeof(float);
  using VI = decltype(V{} < V{});
#pragma GCC unroll 4
  for (int b = W / 2; b >= 1; b /= 2) {
    VI lo, hi;
    for (int pos = 0; pos < W; ++pos) {
      lo[pos] = (pos & b) == 0 ? pos : W + pos - b;
      hi[pos] = (pos & b) == 0 ? pos + b : W + pos;
    }
#pragma GCC unroll 16
    for (int i = 0; i < W; ++i) {
      if ((i & b) != 0) continue;
      const V x = a[i], y = a[i + b];
      a[i] = __builtin_shuffle(x, y, lo);
      a[i + b] = __builtin_shuffle(x, y, hi);
    }
  }
}

// out[r·os + d] = tile[d·W + r] for r < rows (≤ W), d < K.
template <typename V>
CB_INLINE void StoreTransposed(const float* tile, int64_t K, int64_t rows, float* out,
                               int64_t os) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  for (int64_t d0 = 0; d0 < K; d0 += W) {
    const int64_t nd = std::min(W, K - d0);
    V a[W];
#pragma GCC unroll 16
    for (int64_t d = 0; d < W; ++d) a[d] = d < nd ? Load<V>(tile + (d0 + d) * W) : Splat<V>(0.0f);
    TransposeBlock(a);
    for (int64_t r = 0; r < rows; ++r) {
      if (nd == W) Store(out + r * os + d0, a[r]);
      else StoreTail(out + r * os + d0, nd, a[r]);
    }
  }
}

// A block's tile [nk, W] (keys × rows i0..) into rows × keys: m[(i0 + r)·ld + j] for r < rows.
template <typename V>
CB_INLINE void TileToRows(const float* tile, int64_t nk, int64_t i0, int64_t rows, float* m,
                          int64_t ld) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  for (int64_t j0 = 0; j0 < nk; j0 += W) {
    V a[W];
#pragma GCC unroll 16
    for (int64_t c = 0; c < W; ++c) {
      a[c] = j0 + c < nk ? Load<V>(tile + (j0 + c) * W) : Splat<V>(0.0f);
    }
    TransposeBlock(a);
    for (int64_t r = 0; r < rows; ++r) Store(m + (i0 + r) * ld + j0, a[r]);
  }
}

// out[d·W + r] = Σ_{j ≤ i0 + r, j < nk} pt[j·W + r] · rows[j·rs + d] (× scale where Scaled),
// d in [d0, d0 + DC): two chains by key parity, as WeightedRows from key 0. Lanes whose row ends
// before key j skip it.
template <typename V, int DC, bool Scaled>
CB_INLINE void BlockCombineDims(const float* pt, const float* rows, int64_t rs, int64_t d0,
                                int64_t i0, int64_t nk, float scale, float* out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const auto lane = LaneIndex<V>();
  V even[DC], odd[DC];
#pragma GCC unroll 8
  for (int c = 0; c < DC; ++c) even[c] = odd[c] = Splat<V>(0.0f);
  const int64_t full = std::min(nk, i0 + 1);  // keys every lane's row reaches
  int64_t j = 0;
  for (; j + 1 < full; j += 2) {
    const V pe = Load<V>(pt + j * W);
    const V po = Load<V>(pt + (j + 1) * W);
    const float* re = rows + j * rs + d0;
    const float* ro = re + rs;
#pragma GCC unroll 8
    for (int c = 0; c < DC; ++c) {
      even[c] = even[c] + Splat<V>(re[c]) * pe;
      odd[c] = odd[c] + Splat<V>(ro[c]) * po;
    }
  }
  for (; j < nk; ++j) {
    const V pj = Load<V>(pt + j * W);
    const float* rj = rows + j * rs + d0;
    const auto keep = lane >= static_cast<int>(j - i0);
    if (j % 2 == 0) {
#pragma GCC unroll 8
      for (int c = 0; c < DC; ++c) even[c] = keep ? even[c] + Splat<V>(rj[c]) * pj : even[c];
    } else {
#pragma GCC unroll 8
      for (int c = 0; c < DC; ++c) odd[c] = keep ? odd[c] + Splat<V>(rj[c]) * pj : odd[c];
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < DC; ++c) {
    const V sum = even[c] + odd[c];
    Store(out + (d0 + c) * W, Scaled ? sum * Splat<V>(scale) : sum);
  }
}

template <typename V, bool Scaled>
CB_INLINE void BlockCombine(const float* pt, const float* rows, int64_t rs, int64_t K, int64_t i0,
                            int64_t nk, float scale, float* out) {
  int64_t d0 = 0;
  for (; d0 + 4 <= K; d0 += 4) BlockCombineDims<V, 4, Scaled>(pt, rows, rs, d0, i0, nk, scale, out);
  for (; d0 < K; ++d0) BlockCombineDims<V, 1, Scaled>(pt, rows, rs, d0, i0, nk, scale, out);
}

// out[d·W + l] = Σ_{i = j0 + l .. T − 1} wt[i·ld + j0 + l] · rows[i·rs + d]: the sums over rows
// of keys j0 .. j0 + W − 1, one key per lane, from weights kept rows × keys. WeightedRows sums a
// key's rows in two chains, from its first row by parity; here A takes the rows at even
// distance from j0 and B the others, so for an even lane A is that chain and B the other, for
// an odd lane the reverse, and A + B = B + A is WeightedRows' sum. Lanes skip rows before their
// key.
template <typename V, int DC>
CB_INLINE void KeyBlockCombineDims(const float* wt, int64_t ld, const float* rows, int64_t rs,
                                   int64_t d0, int64_t j0, int64_t T, float* out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const auto lane = LaneIndex<V>();
  V a[DC], b[DC];
#pragma GCC unroll 8
  for (int c = 0; c < DC; ++c) a[c] = b[c] = Splat<V>(0.0f);
  int64_t i = j0;
  for (; i < T && i < j0 + W - 1; ++i) {  // rows that only some lanes' keys reach
    const V wi = Load<V>(wt + i * ld + j0);
    const float* ri = rows + i * rs + d0;
    const auto keep = lane <= static_cast<int>(i - j0);
    if ((i - j0) % 2 == 0) {
#pragma GCC unroll 8
      for (int c = 0; c < DC; ++c) a[c] = keep ? a[c] + Splat<V>(ri[c]) * wi : a[c];
    } else {
#pragma GCC unroll 8
      for (int c = 0; c < DC; ++c) b[c] = keep ? b[c] + Splat<V>(ri[c]) * wi : b[c];
    }
  }
  if ((i - j0) % 2 == 1 && i < T) {  // pairs below start with an A row
    const V wi = Load<V>(wt + i * ld + j0);
    const float* ri = rows + i * rs + d0;
#pragma GCC unroll 8
    for (int c = 0; c < DC; ++c) b[c] = b[c] + Splat<V>(ri[c]) * wi;
    ++i;
  }
  for (; i + 1 < T; i += 2) {
    const V we = Load<V>(wt + i * ld + j0);
    const V wo = Load<V>(wt + (i + 1) * ld + j0);
    const float* re = rows + i * rs + d0;
    const float* ro = re + rs;
#pragma GCC unroll 8
    for (int c = 0; c < DC; ++c) {
      a[c] = a[c] + Splat<V>(re[c]) * we;
      b[c] = b[c] + Splat<V>(ro[c]) * wo;
    }
  }
  if (i < T) {
    const V wi = Load<V>(wt + i * ld + j0);
    const float* ri = rows + i * rs + d0;
#pragma GCC unroll 8
    for (int c = 0; c < DC; ++c) a[c] = a[c] + Splat<V>(ri[c]) * wi;
  }
#pragma GCC unroll 8
  for (int c = 0; c < DC; ++c) Store(out + (d0 + c) * W, a[c] + b[c]);
}

template <typename V>
CB_INLINE void KeyBlockCombine(const float* wt, int64_t ld, const float* rows, int64_t rs,
                               int64_t K, int64_t j0, int64_t T, float* out) {
  int64_t d0 = 0;
  for (; d0 + 8 <= K; d0 += 8) KeyBlockCombineDims<V, 8>(wt, ld, rows, rs, d0, j0, T, out);
  for (; d0 + 4 <= K; d0 += 4) KeyBlockCombineDims<V, 4>(wt, ld, rows, rs, d0, j0, T, out);
  for (; d0 < K; ++d0) KeyBlockCombineDims<V, 1>(wt, ld, rows, rs, d0, j0, T, out);
}

// float((a0 + a1) + (a2 + a3)) per lane, as SumLanes.
template <typename V>
CB_INLINE V SumToFloat(const typename Doubles<V>::Type* acc) {
  return __builtin_convertvector((acc[0] + acc[1]) + (acc[2] + acc[3]), V);
}

// float(1 / ((a0 + a1) + (a2 + a3))) per lane, as the softmax's 1/z.
template <typename V>
CB_INLINE V InverseSum(const typename Doubles<V>::Type* acc) {
  return __builtin_convertvector(1.0 / ((acc[0] + acc[1]) + (acc[2] + acc[3])), V);
}

// s lane r = Σ_k qt[k·ld + r] · row[k] over even and odd k, as DotGroups (K known at compile
// time: qv[k] = qt[k·ld ..] in registers).
template <typename V, int kK>
CB_INLINE V BlockDotRegs(const V* qv, const float* row) {
  V even = Splat<V>(0.0f), odd = Splat<V>(0.0f);
#pragma GCC unroll 32
  for (int k = 0; k + 1 < kK; k += 2) {
    even = even + Splat<V>(row[k]) * qv[k];
    odd = odd + Splat<V>(row[k + 1]) * qv[k + 1];
  }
  if (kK % 2 == 1) even = even + Splat<V>(row[kK - 1]) * qv[kK - 1];
  return even + odd;
}

template <typename V>
CB_INLINE V BlockDot(const float* qt, int64_t ld, const float* row, int64_t K) {
  V even = Splat<V>(0.0f), odd = Splat<V>(0.0f);
  int64_t k = 0;
  for (; k + 1 < K; k += 2) {
    even = even + Splat<V>(row[k]) * Load<V>(qt + k * ld);
    odd = odd + Splat<V>(row[k + 1]) * Load<V>(qt + (k + 1) * ld);
  }
  if (k < K) even = even + Splat<V>(row[k]) * Load<V>(qt + k * ld);
  return even + odd;
}

// A thread's scratch, kept between calls (ORT's pool threads live as long as the session).
float* TaskScratch(size_t count) {
  struct Buffer {
    float* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffer;
  if (count > buffer.size) {
    std::free(buffer.data);
    buffer.data = static_cast<float*>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64));
    if (buffer.data == nullptr) std::abort();
    buffer.size = count;
  }
  return buffer.data;
}

// A task's scratch: the head's P, Qs, dY and dQ as rows [T, kp]; P, Qs, dY and dQ·A transposed
// [K, ld] (lanes hold rows); the weights W and dS [T, ld] (the forward keeps one row); dP's
// three sums (or Y's row) [3·kp]; a causal block's W and dS as keys × rows [ld, 16], and two
// tiles of sums [kp, 16].
struct HeadScratch {
  const float *pr, *dyr;  // P's and dY's rows: the inputs themselves where K = kp
  float *qs, *dq, *pt, *qst, *dyt, *dqa, *w, *ds, *row, *ptile, *stile, *tile, *tile2;
};

// Lays out the scratch; s.pr and s.dyr are set by the caller (PadRows, into pad_p and pad_dy).
HeadScratch MakeScratch(const MetricJob& job, float** pad_p, float** pad_dy) {
  const int64_t T = job.T, K = job.K, kp = job.kp, ld = job.ld;
  const int64_t rows = job.dy != nullptr ? T : 1;
  const size_t count = static_cast<size_t>(4 * T * kp + 4 * K * ld + 2 * rows * ld + 3 * kp +
                                           2 * ld * 16 + 2 * kp * 16);
  float* buf = TaskScratch(count);
  HeadScratch s{};
  *pad_p = buf;
  *pad_dy = buf + T * kp;
  s.qs = buf + 2 * T * kp;
  s.dq = s.qs + T * kp;
  s.pt = s.dq + T * kp;
  s.qst = s.pt + K * ld;
  s.dyt = s.qst + K * ld;
  s.dqa = s.dyt + K * ld;
  s.w = s.dqa + K * ld;
  s.ds = s.w + rows * ld;
  s.ptile = s.ds + rows * ld;
  s.stile = s.ptile + ld * 16;
  s.tile = s.stile + ld * 16;
  s.tile2 = s.tile + kp * 16;
  s.row = s.tile2 + kp * 16;  // 3·kp: dP's three sums, or Y's row
  return s;
}

// src's rows padded to kp: src itself where K = kp, else rows[t·kp + k] = src[t·K + k] with
// zeros for k in [K, kp).
const float* PadRows(const float* src, int64_t T, int64_t K, int64_t kp, float* rows) {
  if (K == kp) return src;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t k = 0; k < kp; ++k) rows[t * kp + k] = k < K ? src[t * K + k] : 0.0f;
  }
  return rows;
}

// dst[k·ld + t] = src[t·K + k] for t < T, zeros for t in [T, ld): W × W blocks transposed in
// registers (ld is a multiple of 16, so of W).
template <typename V>
CB_INLINE void TransposePadded(const float* src, int64_t T, int64_t K, int64_t ld, float* dst) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  for (int64_t t0 = 0; t0 < ld; t0 += W) {
    for (int64_t k0 = 0; k0 < K; k0 += W) {
      const int64_t nk = std::min(W, K - k0);
      V a[W];
#pragma GCC unroll 16
      for (int64_t r = 0; r < W; ++r) {
        const float* row = src + (t0 + r) * K + k0;
        a[r] = t0 + r >= T ? Splat<V>(0.0f) : nk == W ? Load<V>(row) : LoadTail<V>(row, nk, 0.0f);
      }
      TransposeBlock(a);
      for (int64_t k = 0; k < nk; ++k) Store(dst + (k0 + k) * ld + t0, a[k]);
    }
  }
}

// rows[t·kp + k] = src[k·ld + t] for t < T, k < K, zeros for k in [K, kp): TransposePadded's
// inverse.
template <typename V>
CB_INLINE void UntransposePadded(const float* src, int64_t T, int64_t K, int64_t kp, int64_t ld,
                                 float* rows) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  for (int64_t t0 = 0; t0 < T; t0 += W) {
    const int64_t nt = std::min(W, T - t0);
    for (int64_t k0 = 0; k0 < kp; k0 += W) {
      V a[W];
#pragma GCC unroll 16
      for (int64_t k = 0; k < W; ++k) {
        a[k] = k0 + k < K ? Load<V>(src + (k0 + k) * ld + t0) : Splat<V>(0.0f);
      }
      TransposeBlock(a);
      for (int64_t t = 0; t < nt; ++t) Store(rows + (t0 + t) * kp + k0, a[t]);
    }
  }
}

// A causal head's blocks of W query rows (see above): Y's rows into out, or for the gradient
// dQ's rows into s.dq, dQ·A into s.dqa and dP's rows into out. kK: K where known at compile
// time (Qs's and dY's vectors then stay in registers over a block's keys), else 0.
template <typename V, int kK>
CB_INLINE void CausalBlocks(const MetricJob& job, const HeadScratch& s, const float* a,
                            float* out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  typedef typename Doubles<V>::Type DV;
  const int64_t T = job.T, K = kK > 0 ? kK : job.K, kp = job.kp, ld = job.ld, tp = job.tp;
  const bool grad = job.dy != nullptr;
  const auto lane = LaneIndex<V>();
  const float inf = HUGE_VALF;
  for (int64_t i0 = 0; i0 < T; i0 += W) {
    const int64_t nk = std::min(i0 + W, T);  // keys of the block's rows
    const int64_t rows = std::min(W, T - i0);
    float* pt = s.ptile;  // [nk, W]: the block's weights, keys × rows
    V m = Splat<V>(-inf);
    V qv[kK > 0 ? kK : 1];
#pragma GCC unroll 32
    for (int k = 0; k < kK; ++k) qv[k] = Load<V>(s.qst + k * ld + i0);
    for (int64_t j = 0; j < nk; ++j) {
      const V dot = kK > 0 ? BlockDotRegs<V, kK>(qv, s.pr + j * kp)
                           : BlockDot<V>(s.qst + i0, ld, s.pr + j * kp, K);
      V z = dot + Load<V>(job.bias_t + j * tp + i0);
      if (j > i0) z = lane >= static_cast<int>(j - i0) ? z : Splat<V>(-inf);
      Store(pt + j * W, z);
      m = z > m ? z : m;
    }
    DV acc[4] = {};
    for (int64_t j = 0; j < nk; ++j) {
      const V e = Exp(Load<V>(pt + j * W) - m);
      Store(pt + j * W, e);
      acc[j % 4] += __builtin_convertvector(e, DV);
    }
    const V inv = InverseSum<V>(acc);
    for (int64_t j = 0; j < nk; ++j) Store(pt + j * W, Load<V>(pt + j * W) * inv);
    if (!grad) {
      BlockCombine<V, false>(pt, s.pr, kp, K, i0, nk, 1.0f, s.tile);
      StoreTransposed<V>(s.tile, K, rows, out + i0 * K, K);
      continue;
    }
    // dw_j = dY_i · P_j, c = Σ_j w_j·dw_j, ds_j = w_j·(dw_j − c), into a tile as W's
    float* st = s.stile;
    DV acc2[4] = {};
#pragma GCC unroll 32
    for (int k = 0; k < kK; ++k) qv[k] = Load<V>(s.dyt + k * ld + i0);  // now dY's
    for (int64_t j = 0; j < nk; ++j) {
      const V dw = kK > 0 ? BlockDotRegs<V, kK>(qv, s.pr + j * kp)
                          : BlockDot<V>(s.dyt + i0, ld, s.pr + j * kp, K);
      Store(st + j * W, dw);
      V wd = Load<V>(pt + j * W) * dw;
      if (j > i0) wd = lane >= static_cast<int>(j - i0) ? wd : Splat<V>(0.0f);
      acc2[j % 4] += __builtin_convertvector(wd, DV);
    }
    const V c = SumToFloat<V>(acc2);
    for (int64_t j = 0; j < nk; ++j) {
      Store(st + j * W, Load<V>(pt + j * W) * (Load<V>(st + j * W) - c));
    }
    BlockCombine<V, true>(st, s.pr, kp, K, i0, nk, job.scale, s.tile);  // dQ, dims × rows
    StoreTransposed<V>(s.tile, K, rows, s.dq + i0 * kp, kp);
    MetricColumns<V, false>(a, kp, s.tile, W, K, 1.0f, s.dqa + i0, ld);  // dQ·A, dims × rows
    TileToRows<V>(pt, nk, i0, rows, s.w, ld);  // W and dS rows × keys, for dP's sums
    TileToRows<V>(st, nk, i0, rows, s.ds, ld);
  }
  if (!grad) return;
  for (int64_t j0 = 0; j0 < T; j0 += W) {  // dP's rows, W keys at a time
    const int64_t keys = std::min(W, T - j0);
    KeyBlockCombine<V>(s.w, ld, s.dyr, kp, K, j0, T, s.tile);    // Σ_i w_ij·dY_i
    KeyBlockCombine<V>(s.ds, ld, s.qs, kp, K, j0, T, s.tile2);   // Σ_i ds_ij·Qs_i
    for (int64_t d = 0; d < K; ++d) {
      Store(s.tile + d * W,
            (Load<V>(s.tile + d * W) + Load<V>(s.tile2 + d * W)) + Load<V>(s.dqa + d * ld + j0));
    }
    StoreTransposed<V>(s.tile, K, keys, out + j0 * K, K);
  }
}

template <typename V>
CB_INLINE void MetricHead(const MetricJob& job, int64_t task) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t T = job.T, K = job.K, kp = job.kp, ld = job.ld, h = task % job.H;
  const bool grad = job.dy != nullptr;
  const bool blocks = sizeof(V) >= sizeof(V8) && job.causal;
  float *pad_p, *pad_dy;
  HeadScratch s = MakeScratch(job, &pad_p, &pad_dy);
  const float* p = job.p + task * T * K;
  const float* a = job.a + h * K * kp;
  const float* dy = grad ? job.dy + task * T * K : nullptr;
  float* out = job.y + task * T * K;
  s.pr = PadRows(p, T, K, kp, pad_p);
  TransposePadded<V>(p, T, K, ld, s.pt);
  for (int64_t t0 = 0; t0 < T; t0 += W) {  // Qs = (P·A)·Scale once for the head, transposed
    MetricColumns<V, true>(a, kp, s.pt + t0, ld, K, job.scale, s.qst + t0, ld);
  }
  if (grad || !blocks) UntransposePadded<V>(s.qst, T, K, kp, ld, s.qs);  // and as rows
  if (grad) {
    s.dyr = PadRows(dy, T, K, kp, pad_dy);
    if (blocks) {
      TransposePadded<V>(dy, T, K, ld, s.dyt);
      if (K < kp) {  // dQ's padding, which OuterSums reads
        for (int64_t t = 0; t < T; ++t) {
          for (int64_t k = K; k < kp; ++k) s.dq[t * kp + k] = 0.0f;
        }
      }
    }
  }
  if constexpr (sizeof(V) >= sizeof(V8)) {
    if (blocks) {
      if (K == 16) CausalBlocks<V, 16>(job, s, a, out);
      else CausalBlocks<V, 0>(job, s, a, out);
      if (grad) OuterSums<V>(s.pr, s.dq, kp, T, K, job.g + task * K * kp);
      return;
    }
  }
  if (!grad) {
    for (int64_t i = 0; i < T; ++i) {
      const int64_t lo = job.lo[i], hi = job.hi[i];
      RowDots<V>(s.qs + i * kp, s.pt, ld, K, lo, hi, s.w);
      SoftmaxRow<V>(s.w, job.bias + i * T, T * T - i * T, lo, hi);
      WeightedRows<V, false>(s.w, 1, s.pr, kp, kp, lo, hi, 1.0f, s.row);
      for (int64_t k = 0; k < K; ++k) out[i * K + k] = s.row[k];
    }
    return;
  }
  for (int64_t i = 0; i < T; ++i) {
    const int64_t lo = job.lo[i], hi = job.hi[i];
    float* w = s.w + i * ld;
    float* ds = s.ds + i * ld;
    RowDots<V>(s.qs + i * kp, s.pt, ld, K, lo, hi, w);
    SoftmaxRow<V>(w, job.bias + i * T, T * T - i * T, lo, hi);
    RowDots<V>(dy + i * K, s.pt, ld, K, lo, hi, ds);  // dw_ij = dY_i · P_j
    D4 acc = {};
    int64_t j = lo;
    for (; j + W <= hi + 1; j += W) Accumulate(acc, Load<V>(w + j) * Load<V>(ds + j));
    if (j <= hi) Accumulate(acc, Keep(Load<V>(w + j) * Load<V>(ds + j), hi + 1 - j, 0.0f));
    const float c = static_cast<float>(SumLanes(acc));
    for (j = lo; j <= hi; j += W) Store(ds + j, Load<V>(w + j) * (Load<V>(ds + j) - c));
    WeightedRows<V, true>(ds, 1, s.pr, kp, kp, lo, hi, job.scale, s.dq + i * kp);
  }
  float* dv = s.row;
  float* dk = s.row + kp;
  float* dq = s.row + 2 * kp;
  for (int64_t j = 0; j < T; ++j) {
    const int64_t i0 = job.ilo[j], i1 = job.ihi[j];
    WeightedRows<V, false>(s.w + j, ld, s.dyr, kp, kp, i0, i1, 1.0f, dv);  // values
    WeightedRows<V, false>(s.ds + j, ld, s.qs, kp, kp, i0, i1, 1.0f, dk);  // keys
    WeightedRows<V, false>(s.dq + j * kp, 1, a, kp, kp, 0, K - 1, 1.0f, dq);  // queries
    for (int64_t d = 0; d < kp; d += W) {
      Store(dv + d, (Load<V>(dv + d) + Load<V>(dk + d)) + Load<V>(dq + d));
    }
    for (int64_t k = 0; k < K; ++k) out[j * K + k] = dv[k];
  }
  OuterSums<V>(s.pr, s.dq, kp, T, K, job.g + task * K * kp);  // G_bh[k] = Σ_i P_ik · dQ_i
}

template <typename V>
CB_INLINE void MetricHeads(const MetricJob& job, int64_t t0, int64_t t1) {
  for (int64_t t = t0; t < t1; ++t) MetricHead<V>(job, t);
}

CB_RANGE_AT_EVERY_WIDTH(MetricHeads, MetricJob, MetricHeads)

// The key range of every query row, and the rows of every key, as attention.cc's
// AttentionRanges for one [T, T] bias. `ranges` holds 4·T.
void MetricRanges(const float* bias, int64_t T, int32_t* ranges) {
  int32_t* lo = ranges;
  int32_t* hi = ranges + T;
  int32_t* ilo = ranges + 2 * T;
  int32_t* ihi = ranges + 3 * T;
  bool monotone = true;
  for (int64_t i = 0; i < T; ++i) {
    const float* b = bias + i * T;
    int64_t first = 0, last = T - 1;
    while (first < T && !(b[first] >= kMaskedBias)) ++first;
    while (last >= 0 && !(b[last] >= kMaskedBias)) --last;
    if (first > last) first = 0, last = T - 1;  // every key masked: compute the row in full
    lo[i] = static_cast<int32_t>(first);
    hi[i] = static_cast<int32_t>(last);
    if (i > 0 && (lo[i] < lo[i - 1] || hi[i] < hi[i - 1])) monotone = false;
  }
  if (!monotone) {
    for (int64_t i = 0; i < T; ++i) lo[i] = 0, hi[i] = static_cast<int32_t>(T - 1);
  }
  for (int64_t j = 0; j < T; ++j) {
    int32_t i0 = static_cast<int32_t>(T), i1 = -1;
    for (int64_t i = 0; i < T; ++i) {
      if (lo[i] <= j && j <= hi[i]) {
        if (i0 > i) i0 = static_cast<int32_t>(i);
        i1 = static_cast<int32_t>(i);
      }
    }
    ilo[j] = i0;
    ihi[j] = i1;
  }
}

OrtStatus* ComputeMetric(OrtKernelContext* ctx, bool grad, Simd simd) {
  const char* name = grad ? "MetricAttentionGrad" : "MetricAttention";
  const size_t first = grad ? 1 : 0;  // MetricAttentionGrad's inputs start with dY
  Shape ps, ms, bs, ss, dys;
  MetricJob job;
  const float *m = nullptr, *scale = nullptr;
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 0, "P", &ps, &job.p));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 1, "M", &ms, &m));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 2, "Bias", &bs, &job.bias));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 3, "Scale", &ss, &scale));
  if (grad) CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "dY", &dys, &job.dy));
  if (ps.rank != 4) {
    return Error(std::string("Cannot run ") + name + " as P must be [B, H, T, K]: current shape is " +
                 ShapeString(ps));
  }
  job.B = ps.dims[0];
  job.H = ps.dims[1];
  job.T = ps.dims[2];
  job.K = ps.dims[3];
  const int64_t L = job.K * (job.K + 1) / 2;
  if (ms.rank != 2 || ms.dims[0] != job.H || ms.dims[1] != L) {
    return Error(std::string("Cannot run ") + name + " as M must be [" + std::to_string(job.H) +
                 ", " + std::to_string(L) + "] (H, K(K+1)/2) for P " + ShapeString(ps) +
                 ": current shape is " + ShapeString(ms));
  }
  if (bs.rank != 2 || bs.dims[0] != job.T || bs.dims[1] != job.T) {
    return Error(std::string("Cannot run ") + name + " as Bias must be [" +
                 std::to_string(job.T) + ", " + std::to_string(job.T) + "]: current shape is " +
                 ShapeString(bs));
  }
  int64_t scale_count = 1;
  for (size_t i = 0; i < ss.rank; ++i) scale_count *= ss.dims[i];
  if (scale_count != 1) {
    return Error(std::string("Cannot run ") + name + " as Scale must hold one value: shape is " +
                 ShapeString(ss));
  }
  if (grad && !SameShape(dys, ps)) {
    return Error(std::string("Cannot run ") + name + " as dY must have P's shape " +
                 ShapeString(ps) + ": current shape is " + ShapeString(dys));
  }
  job.scale = *scale;
  job.kp = PadDims(job.K);
  job.ld = PadKeys(job.T);
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, ps, &job.y));
  float* dm = nullptr;
  if (grad) {
    CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 1, ms, &dm));
    for (int64_t e = 0; e < job.H * L; ++e) dm[e] = 0.0f;
  }
  const int64_t tasks = job.B * job.H;
  if (tasks == 0 || job.T == 0 || job.K == 0) {
    if (grad) {  // nothing to compute, but dP must still be defined
      for (int64_t e = 0; e < tasks * job.T * job.K; ++e) job.y[e] = 0.0f;
    }
    return nullptr;
  }
  const int64_t K = job.K, kp = job.kp;
  std::vector<float> dense(static_cast<size_t>(job.H * K * kp), 0.0f);
  for (int64_t h = 0; h < job.H; ++h) {
    const float* mh = m + h * L;
    int64_t l = 0;
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t k2 = k; k2 < K; ++k2, ++l) {
        dense[(h * K + k) * kp + k2] = dense[(h * K + k2) * kp + k] = mh[l];
      }
    }
  }
  job.a = dense.data();
  std::vector<int32_t> ranges(static_cast<size_t>(4 * job.T));
  MetricRanges(job.bias, job.T, ranges.data());
  job.lo = ranges.data();
  job.hi = job.lo + job.T;
  job.ilo = job.hi + job.T;
  job.ihi = job.ilo + job.T;
  const int64_t T = job.T;
  job.tp = (T + 15) / 16 * 16;
  job.causal = simd != kSse2;
  for (int64_t i = 0; job.causal && i < T; ++i) job.causal = job.lo[i] == 0 && job.hi[i] == i;
  std::vector<float> bias_t(job.causal ? static_cast<size_t>(T * job.tp) : 0, 0.0f);
  for (int64_t i = 0; job.causal && i < T; ++i) {
    for (int64_t j = 0; j < T; ++j) bias_t[j * job.tp + i] = job.bias[i * T + j];
  }
  job.bias_t = bias_t.data();
  std::vector<float> g(grad ? static_cast<size_t>(tasks * K * kp) : 0);
  job.g = g.data();
  job.blocks = {tasks, 1, simd};
  CB_RETURN_IF_ERROR(
      (RunBlocks<MetricJob, MetricHeadsSse2, MetricHeadsAvx2, MetricHeadsAvx512>(ctx, &job)));
  if (!grad) return nullptr;
  // G_h = Σ_b G_bh in double, b ascending; dM collects both halves of each tied pair.
  std::vector<double> gh(static_cast<size_t>(K * K));
  for (int64_t h = 0; h < job.H; ++h) {
    for (int64_t e = 0; e < K * K; ++e) {
      double sum = 0.0;
      for (int64_t b = 0; b < job.B; ++b) sum += g[((b * job.H + h) * K + e / K) * kp + e % K];
      gh[e] = sum;
    }
    int64_t l = 0;
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t k2 = k; k2 < K; ++k2, ++l) {
        dm[h * L + l] =
            static_cast<float>(k == k2 ? gh[k * K + k] : gh[k * K + k2] + gh[k2 * K + k]);
      }
    }
  }
  return nullptr;
}

OrtStatus* ComputeMetricAttention(OrtKernelContext* ctx, Simd simd) {
  return ComputeMetric(ctx, false, simd);
}

OrtStatus* ComputeMetricAttentionGrad(OrtKernelContext* ctx, Simd simd) {
  return ComputeMetric(ctx, true, simd);
}

}  // namespace

CB_REGISTER_OP("MetricAttention", 4, 1, 0, ComputeMetricAttention);
CB_REGISTER_OP("MetricAttentionGrad", 5, 2, 0, ComputeMetricAttentionGrad);

}  // namespace cb
