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

#include "../include/attention_rows.h"
#include "../include/ort_abi.h"
#include "../include/registry.h"
#include "../include/simd.h"

namespace cb {
namespace {

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

// out[d·os] = Σ_k a[k·kp + d] · xt[k·xs] (k < K) for every d < K, times scale where Scaled: a
// K × K product with one row t per lane (xt = row t's x, transposed), as BlockCombine with no
// lane skipping a key. Each element takes WeightedRows' operations over A's rows with weights
// x_tk, so either gives the same bits.
template <typename V, bool Scaled>
CB_INLINE void MetricColumns(const float* a, int64_t kp, const float* xt, int64_t xs, int64_t K,
                             float scale, float* out, int64_t os) {
  BlockCombine<V, Scaled>(xt, xs, a, kp, K, K - 1, K, scale, out, os);
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
// block steps are attention_rows.h's, as attention.cc's CausalHead uses them.

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
  float* buf = ThreadScratch(count);
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

// rows[t·kp + k] = src[k·ld + t] for t < T, k < K, zeros for k in [K, kp): TransposeRows'
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
  const int64_t T = job.T, K = kK > 0 ? kK : job.K, kp = job.kp, ld = job.ld, tp = job.tp;
  const bool grad = job.dy != nullptr;
  for (int64_t i0 = 0; i0 < T; i0 += W) {
    const int64_t nk = std::min(i0 + W, T);  // keys of the block's rows
    const int64_t rows = std::min(W, T - i0);
    float* pt = s.ptile;  // [nk, W]: the block's weights, keys × rows
    CausalBlockWeights<V, kK>(s.qst + i0, ld, s.pr, kp, K, job.bias_t, tp, i0, nk, pt);
    if (!grad) {
      BlockCombine<V, false>(pt, W, s.pr, kp, K, i0, nk, 1.0f, s.tile, W);
      StoreTransposed<V>(s.tile, K, rows, out + i0 * K, K);
      continue;
    }
    float* st = s.stile;  // the block's dS, keys × rows as W's
    CausalBlockGrads<V, kK>(s.dyt + i0, ld, s.pr, kp, K, i0, nk, pt, st);
    BlockCombine<V, true>(st, W, s.pr, kp, K, i0, nk, job.scale, s.tile, W);  // dQ, dims × rows
    StoreTransposed<V>(s.tile, K, rows, s.dq + i0 * kp, kp);
    // dQ·A, dims × rows. job.K rather than the constant K: with K = 16 known, g++ -O2 warns
    // (-Waggressive-loop-optimizations) of BlockCombineDims' key tail, which never runs here.
    MetricColumns<V, false>(a, kp, s.tile, W, job.K, 1.0f, s.dqa + i0, ld);
    TileToRows<V>(pt, nk, i0, rows, s.w, ld);  // W and dS rows × keys, for dP's sums
    TileToRows<V>(st, nk, i0, rows, s.ds, ld);
  }
  if (!grad) return;
  for (int64_t j0 = 0; j0 < T; j0 += W) {  // dP's rows, W keys at a time
    const int64_t keys = std::min(W, T - j0);
    KeyBlockCombine<V, false>(s.w, ld, s.dyr, kp, K, j0, T, 1.0f, s.tile);    // Σ_i w_ij·dY_i
    KeyBlockCombine<V, false>(s.ds, ld, s.qs, kp, K, j0, T, 1.0f, s.tile2);   // Σ_i ds_ij·Qs_i
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
  TransposeRows<V, false>(p, K, T, K, 1.0f, s.pt, ld);
  for (int64_t t0 = 0; t0 < T; t0 += W) {  // Qs = (P·A)·Scale once for the head, transposed
    MetricColumns<V, true>(a, kp, s.pt + t0, ld, K, job.scale, s.qst + t0, ld);
  }
  if (grad || !blocks) UntransposePadded<V>(s.qst, T, K, kp, ld, s.qs);  // and as rows
  if (grad) {
    s.dyr = PadRows(dy, T, K, kp, pad_dy);
    if (blocks) {
      TransposeRows<V, false>(dy, K, T, K, 1.0f, s.dyt, ld);
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
    SoftmaxGradRow<V>(w, ds, lo, hi);
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
  KeyRanges(job.bias, 1, job.T, ranges.data());
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
