// The exact (erf) GELU's ops: GeluGrad, BiasGelu and BiasGeluGrad (their ONNX function
// definitions are in onnx/custom/gelu.ts).

#include <cstdint>
#include <string>

#include "../include/column_sums.h"
#include "../include/ort_abi.h"
#include "../include/registry.h"
#include "../include/simd.h"

namespace cb {
namespace {

// GELU'(x) = Phi(x) + x·phi(x) from Phi and phi.
template <typename V>
CB_INLINE V GeluSlope(const V& x, const V& cdf, const V& pdf) {
  // At x = ±inf, pdf is 0 and x·pdf would be NaN: the limit is 0.
  return cdf + (pdf == Splat<V>(0.0f) ? Splat<V>(0.0f) : x * pdf);
}

template <typename V>
CB_INLINE V GeluDerivative(const V& x) {
  V cdf, pdf;
  NormalCdfPdf(x, &cdf, &pdf);
  return GeluSlope(x, cdf, pdf);
}

// ---------------------------------------------------------------------------------------------
// GeluGrad(dY, X) -> dX = dY * (Phi(x) + x * phi(x)), the derivative of the exact (erf) GELU:
// Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi(x) = exp(-x^2 / 2) / sqrt(2 pi). Each row is read and
// written once; a short last group of lanes is padded with values that cannot change the result.

template <typename V>
CB_INLINE void GeluGradRow(const float* dy, const float* x, float* dx, int64_t n) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  int64_t j = 0;
  for (; j + W <= n; j += W) Store(dx + j, Load<V>(dy + j) * GeluDerivative(Load<V>(x + j)));
  if (j < n) {
    const V d = LoadTail<V>(dy + j, n - j, 0.0f) * GeluDerivative(LoadTail<V>(x + j, n - j, 0.0f));
    StoreTail(dx + j, n - j, d);
  }
}

struct GeluGradJob {
  Blocks blocks;  // rows
  int64_t n = 0;  // row length (last axis)
  const float* dy = nullptr;
  const float* x = nullptr;
  float* dx = nullptr;
};

template <typename V>
CB_INLINE void GeluGradRows(const GeluGradJob& job, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = r * job.n;
    GeluGradRow<V>(job.dy + o, job.x + o, job.dx + o, job.n);
  }
}

CB_RANGE_AT_EVERY_WIDTH(GeluGradRows, GeluGradJob, GeluGradRows)

OrtStatus* ComputeGeluGrad(OrtKernelContext* ctx, Simd simd) {
  Shape dys, xs;
  GeluGradJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "dY", &dys, &job.dy));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 1, "X", &xs, &job.x));
  if (!SameShape(dys, xs)) {
    return Error("Cannot run GeluGrad as its inputs differ in shape: " + ShapeString(dys) +
                 " vs " + ShapeString(xs));
  }
  job.n = xs.rank == 0 ? 1 : xs.dims[xs.rank - 1];
  job.blocks = {LeadingRows(xs), job.n == 0 ? 1 : RowsPerBlock(job.n), simd};
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, xs, &job.dx));
  if (job.n == 0) return nullptr;
  return RunBlocks<GeluGradJob, GeluGradRowsSse2, GeluGradRowsAvx2, GeluGradRowsAvx512>(ctx,
                                                                                       &job);
}

// ---------------------------------------------------------------------------------------------
// BiasGelu(X [..., M], B [M]) -> (Y, Slope): t = X + B (float32, as Add rounds it), Y = t·Φ(t)
// and Slope = Φ(t) + t·φ(t), Φ and φ as GeluGrad computes them (NormalCdfPdf), so that
// dY·Slope has GeluGrad's bits. Y is within ~2 ulp of GELU(t) (Φ from erfc: accurate in the
// negative tail too).

struct BiasGeluJob {
  Blocks blocks;  // rows
  int64_t n = 0;  // M
  const float* x = nullptr;
  const float* b = nullptr;
  float* y = nullptr;
  float* slope = nullptr;
};

template <typename V>
CB_INLINE void BiasGeluRows(const BiasGeluJob& job, int64_t r0, int64_t r1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t n = job.n;
  auto one = [&](const V& t, float* y, float* slope, int64_t count) {
    V cdf, pdf;
    NormalCdfPdf(t, &cdf, &pdf);
    const V gelu = t * cdf;
    const V d = GeluSlope(t, cdf, pdf);
    if (count == W) {
      Store(y, gelu);
      Store(slope, d);
    } else {
      StoreTail(y, count, gelu);
      StoreTail(slope, count, d);
    }
  };
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = r * n;
    int64_t j = 0;
    for (; j + W <= n; j += W) {
      one(Load<V>(job.x + o + j) + Load<V>(job.b + j), job.y + o + j, job.slope + o + j, W);
    }
    if (j < n) {
      const V t = LoadTail<V>(job.x + o + j, n - j, 0.0f) + LoadTail<V>(job.b + j, n - j, 0.0f);
      one(t, job.y + o + j, job.slope + o + j, n - j);
    }
  }
}

CB_RANGE_AT_EVERY_WIDTH(BiasGeluRows, BiasGeluJob, BiasGeluRows)

OrtStatus* ComputeBiasGelu(OrtKernelContext* ctx, Simd simd) {
  Shape xs, bs;
  BiasGeluJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "X", &xs, &job.x));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 1, "B", &bs, &job.b));
  if (xs.rank < 1 || bs.rank != 1 || bs.dims[0] != xs.dims[xs.rank - 1]) {
    return Error("Cannot run BiasGelu as B " + ShapeString(bs) +
                 " must be the last dimension of X " + ShapeString(xs));
  }
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, xs, &job.y));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 1, xs, &job.slope));
  job.n = xs.dims[xs.rank - 1];
  if (job.n == 0) return nullptr;
  job.blocks = {LeadingRows(xs), RowsPerBlock(job.n), simd};
  return RunBlocks<BiasGeluJob, BiasGeluRowsSse2, BiasGeluRowsAvx2, BiasGeluRowsAvx512>(ctx, &job);
}

// ---------------------------------------------------------------------------------------------
// BiasGeluGrad(dY [..., M], Slope [..., M]) -> (dX = dY·Slope, dB [M] = Σ_rows dX): BiasGelu's
// gradient, by the column-sum pass of ColumnSums (column_sums.h) with each element first
// multiplied (float32, as Mul) and stored, so dX and dB have the bits of Mul and then ColumnSums.

OrtStatus* ComputeBiasGeluGrad(OrtKernelContext* ctx, Simd simd) {
  Shape ds, ss;
  ColumnJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "dY", &ds, &job.x));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 1, "Slope", &ss, &job.s));
  bool same = ds.rank >= 1 && ss.rank == ds.rank;
  for (size_t i = 0; same && i < ds.rank; ++i) same = ss.dims[i] == ds.dims[i];
  if (!same) {
    return Error("Cannot run BiasGeluGrad as dY " + ShapeString(ds) + " and Slope " +
                 ShapeString(ss) + " differ in shape");
  }
  Shape bs;
  bs.rank = 1;
  bs.dims[0] = ds.dims[ds.rank - 1];
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, ds, &job.prod));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 1, bs, &job.y));
  job.rows = LeadingRows(ds);
  job.blocks = {bs.dims[0], 64, simd};  // as ColumnSums
  return RunBlocks<ColumnJob, ColumnBlockSse2, ColumnBlockAvx2, ColumnBlockAvx512>(ctx, &job);
}

}  // namespace

CB_REGISTER_OP("GeluGrad", 2, 1, 0, ComputeGeluGrad);
CB_REGISTER_OP("BiasGelu", 2, 2, 0, ComputeBiasGelu);
CB_REGISTER_OP("BiasGeluGrad", 2, 2, 0, ComputeBiasGeluGrad);

}  // namespace cb
