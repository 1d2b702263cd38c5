// Layer normalization over the last axis: RowLayerNorm and its gradient LayerNormGrad (their ONNX
// function definitions are in onnx/custom/layer_norm.ts).

#include <cstdint>
#include <string>
#include <vector>

#include "../include/ort_abi.h"
#include "../include/registry.h"
#include "../include/simd.h"

namespace cb {
namespace {

// ---------------------------------------------------------------------------------------------
// RowLayerNorm(X, Scale [C], B [C]) -> (Y, Mean, InvStd) over the last axis (C), ε = 1e-5; per
// row: μ = float(Σ_j x_j / C), d_j = x_j − μ, σ² = float(Σ_j d_j·d_j / C) (float products, sums
// in double by position mod 4), r = float(1 / √(double(σ²) + 1e-5)), y_j = (d_j·r)·γ_j + β_j.
// Mean and InvStd ([..., 1]) are μ and r, as LayerNormalization's extra outputs.

constexpr double kLayerNormEpsilon = 1e-5;

struct RowLayerNormJob {
  Blocks blocks;  // rows
  int64_t n = 0;
  const float* x = nullptr;
  const float* scale = nullptr;
  const float* bias = nullptr;
  float* y = nullptr;
  float* mean = nullptr;
  float* inv_std = nullptr;
};

template <typename V>
CB_INLINE void RowLayerNormRow(const RowLayerNormJob& job, int64_t r) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t n = job.n;
  const float* x = job.x + r * n;
  float* y = job.y + r * n;
  D4 sum = {};
  int64_t j = 0;
  for (; j + W <= n; j += W) Accumulate(sum, Load<V>(x + j));
  if (j < n) Accumulate(sum, LoadTail<V>(x + j, n - j, 0.0f));
  const float m = static_cast<float>(SumLanes(sum) / static_cast<double>(n));
  D4 sq = {};
  for (j = 0; j + W <= n; j += W) {
    const V d = Load<V>(x + j) - m;
    Accumulate(sq, d * d);
  }
  if (j < n) {
    const V d = Keep(LoadTail<V>(x + j, n - j, 0.0f) - m, n - j, 0.0f);
    Accumulate(sq, d * d);
  }
  const float var = static_cast<float>(SumLanes(sq) / static_cast<double>(n));
  const float rs =
      static_cast<float>(1.0 / __builtin_sqrt(static_cast<double>(var) + kLayerNormEpsilon));
  for (j = 0; j + W <= n; j += W) {
    Store(y + j, ((Load<V>(x + j) - m) * rs) * Load<V>(job.scale + j) + Load<V>(job.bias + j));
  }
  for (; j < n; ++j) y[j] = ((x[j] - m) * rs) * job.scale[j] + job.bias[j];
  job.mean[r] = m;
  job.inv_std[r] = rs;
}

template <typename V>
CB_INLINE void RowLayerNormRows(const RowLayerNormJob& job, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) RowLayerNormRow<V>(job, r);
}

CB_RANGE_AT_EVERY_WIDTH(RowLayerNormRows, RowLayerNormJob, RowLayerNormRows)

OrtStatus* ComputeRowLayerNorm(OrtKernelContext* ctx, Simd simd) {
  Shape xs, ss, bs;
  RowLayerNormJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "X", &xs, &job.x));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 1, "Scale", &ss, &job.scale));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 2, "B", &bs, &job.bias));
  if (xs.rank < 1 || ss.rank != 1 || bs.rank != 1 || ss.dims[0] != xs.dims[xs.rank - 1] ||
      bs.dims[0] != ss.dims[0]) {
    return Error("Cannot run RowLayerNorm as Scale and B must be [C] for X [..., C]: X " +
                 ShapeString(xs) + ", Scale " + ShapeString(ss) + ", B " + ShapeString(bs));
  }
  job.n = xs.dims[xs.rank - 1];
  const int64_t rows = LeadingRows(xs);
  Shape stats = xs;
  stats.dims[stats.rank - 1] = 1;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, xs, &job.y));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 1, stats, &job.mean));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 2, stats, &job.inv_std));
  if (job.n == 0) return nullptr;
  job.blocks = {rows, RowsPerBlock(job.n), simd};
  return RunBlocks<RowLayerNormJob, RowLayerNormRowsSse2, RowLayerNormRowsAvx2,
                   RowLayerNormRowsAvx512>(ctx, &job);
}

// ---------------------------------------------------------------------------------------------
// LayerNormGrad(dY, X, Scale [C], Mean, InvStd) -> (dX, dScale [C], dBias [C]) over the last
// axis (C), with the forward node's statistics: per row, in float32 unless noted,
// x̂_j = (x_j − μ)·r, g_j = dY_j·γ_j, a = float(Σ_j g_j / C) and b = float(Σ_j g_j·x̂_j / C)
// (sums in double by position mod 4), dX_j = ((g_j − a) − x̂_j·b)·r. Rows are split whole over
// the pool in fixed blocks, as RowLayerNorm's; each block adds up its rows' dY_j·x̂_j and
// dY_j per column in row order (float), and the blocks' sums are added in block order: dScale
// and dBias, with bits that do not depend on the thread count. (The definition's row sums are
// ORT's MatMul with a row of ones, whose order is its own.)

struct LayerNormJob {
  Blocks blocks;  // rows
  int64_t n = 0;
  const float* dy = nullptr;
  const float* x = nullptr;
  const float* scale = nullptr;
  const float* mean = nullptr;
  const float* inv_std = nullptr;
  float* dx = nullptr;
  // Per block of rows, [blocks, n] each: the block's column sums of dY·x̂ and of dY, in row
  // order (float), which Compute adds up in block order.
  float* scale_sums = nullptr;
  float* bias_sums = nullptr;
};

template <typename V>
CB_INLINE void LayerNormGradRow(const LayerNormJob& job, int64_t r, float* scale_sums,
                                float* bias_sums) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t n = job.n, o = r * n;
  const float m = job.mean[r], rs = job.inv_std[r];
  const float* x = job.x + o;
  const float* dy = job.dy + o;
  float* dx = job.dx + o;  // holds g until the last pass, which computes x̂ again (same bits)
  D4 sg = {}, sgx = {};
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    const V xhat = (Load<V>(x + j) - m) * rs;
    const V d = Load<V>(dy + j);
    const V g = d * Load<V>(job.scale + j);
    Store(scale_sums + j, Load<V>(scale_sums + j) + d * xhat);
    Store(bias_sums + j, Load<V>(bias_sums + j) + d);
    Store(dx + j, g);
    Accumulate(sg, g);
    Accumulate(sgx, g * xhat);
  }
  if (j < n) {
    const V xhat = (LoadTail<V>(x + j, n - j, 0.0f) - m) * rs;
    const V d = LoadTail<V>(dy + j, n - j, 0.0f);
    const V g = d * LoadTail<V>(job.scale + j, n - j, 0.0f);
    StoreTail(scale_sums + j, n - j, LoadTail<V>(scale_sums + j, n - j, 0.0f) + d * xhat);
    StoreTail(bias_sums + j, n - j, LoadTail<V>(bias_sums + j, n - j, 0.0f) + d);
    StoreTail(dx + j, n - j, g);
    Accumulate(sg, Keep(g, n - j, 0.0f));
    Accumulate(sgx, Keep(g * xhat, n - j, 0.0f));
  }
  const float a = static_cast<float>(SumLanes(sg) / static_cast<double>(n));
  const float b = static_cast<float>(SumLanes(sgx) / static_cast<double>(n));
  for (j = 0; j + W <= n; j += W) {
    const V xhat = (Load<V>(x + j) - m) * rs;
    Store(dx + j, ((Load<V>(dx + j) - a) - xhat * b) * rs);
  }
  for (; j < n; ++j) dx[j] = ((dx[j] - a) - ((x[j] - m) * rs) * b) * rs;
}

template <typename V>
CB_INLINE void LayerNormGradRows(const LayerNormJob& job, int64_t r0, int64_t r1) {
  const int64_t at = r0 / job.blocks.per_block * job.n;  // this block's sums
  for (int64_t r = r0; r < r1; ++r) {
    LayerNormGradRow<V>(job, r, job.scale_sums + at, job.bias_sums + at);
  }
}

CB_RANGE_AT_EVERY_WIDTH(LayerNormGradRows, LayerNormJob, LayerNormGradRows)

OrtStatus* ComputeLayerNormGrad(OrtKernelContext* ctx, Simd simd) {
  Shape dys, xs, ss, ms, rs;
  LayerNormJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "dY", &dys, &job.dy));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 1, "X", &xs, &job.x));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 2, "Scale", &ss, &job.scale));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 3, "Mean", &ms, &job.mean));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 4, "InvStd", &rs, &job.inv_std));
  bool ok = xs.rank >= 1 && SameShape(dys, xs) && ss.rank == 1 &&
            ss.dims[0] == xs.dims[xs.rank - 1] && SameShape(ms, rs) && ms.rank == xs.rank &&
            ms.dims[ms.rank - 1] == 1;
  for (size_t i = 0; ok && i + 1 < xs.rank; ++i) ok = ms.dims[i] == xs.dims[i];
  if (!ok) {
    return Error("Cannot run LayerNormGrad as the shapes do not fit X " + ShapeString(xs) +
                 ": dY " + ShapeString(dys) + ", Scale " + ShapeString(ss) + ", Mean " +
                 ShapeString(ms) + ", InvStd " + ShapeString(rs));
  }
  const int64_t n = job.n = xs.dims[xs.rank - 1];
  const int64_t rows = LeadingRows(xs);
  float* dscale = nullptr;
  float* dbias = nullptr;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, xs, &job.dx));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 1, ss, &dscale));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 2, ss, &dbias));
  if (n == 0) return nullptr;
  job.blocks = {rows, RowsPerBlock(n), simd};
  const int64_t blocks = (rows + job.blocks.per_block - 1) / job.blocks.per_block;
  std::vector<float> sums(static_cast<size_t>(2 * blocks * n), 0.0f);
  job.scale_sums = sums.data();
  job.bias_sums = sums.data() + blocks * n;
  CB_RETURN_IF_ERROR((RunBlocks<LayerNormJob, LayerNormGradRowsSse2, LayerNormGradRowsAvx2,
                                LayerNormGradRowsAvx512>(ctx, &job)));
  for (int64_t j = 0; j < n; ++j) {
    float ds = 0.0f, db = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) {
      ds = ds + job.scale_sums[b * n + j];
      db = db + job.bias_sums[b * n + j];
    }
    dscale[j] = ds;
    dbias[j] = db;
  }
  return nullptr;
}

}  // namespace

CB_REGISTER_OP("RowLayerNorm", 3, 3, 0, ComputeRowLayerNorm);
CB_REGISTER_OP("LayerNormGrad", 5, 3, 0, ComputeLayerNormGrad);

}  // namespace cb
