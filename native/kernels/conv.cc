// Mamba's causal depthwise 1-D convolution, channel-last: CausalDepthwiseConv1d and its gradient
// CausalDepthwiseConv1dGrad. Their ONNX function definitions are in onnx/custom/conv.ts: Pad,
// Slice, Mul and Add, the composition the Mamba layer used before the op, whose autodiff the
// gradient's definition spells out. Each output element takes the definition's float32
// operations in its order, zeros of the padding included, so the bits are the same.

#include <cstdint>
#include <string>

#include "../include/ort_abi.h"
#include "../include/registry.h"
#include "../include/simd.h"

namespace cb {
namespace {

// Mamba's kernel is 4 taps; the dW pass keeps one accumulator vector per tap.
constexpr int64_t kMaxTaps = 16;

struct ConvShape {
  int64_t batch = 0;
  int64_t length = 0;
  int64_t channels = 0;
  int64_t taps = 0;
};

// X [B, L, C] and W [k, C] with 1 <= k <= kMaxTaps: the convolution's shape.
OrtStatus* ReadConvShape(const char* op, const Shape& xs, const Shape& ws, ConvShape* s) {
  if (xs.rank != 3 || ws.rank != 2 || ws.dims[1] != xs.dims[2] || ws.dims[0] < 1 ||
      ws.dims[0] > kMaxTaps) {
    return Error(std::string("Cannot run ") + op + " as X must be [B, L, C] and W [k, C] with " +
                 "1 <= k <= 16: X " + ShapeString(xs) + ", W " + ShapeString(ws));
  }
  *s = {xs.dims[0], xs.dims[1], xs.dims[2], ws.dims[0]};
  return nullptr;
}

struct ConvJob {
  Blocks blocks;  // forward and dX: rows (b, t); dW: vectors of columns
  ConvShape s;
  const float* x = nullptr;     // [B, L, C]
  const float* w = nullptr;     // [k, C]
  const float* bias = nullptr;  // [C]
  const float* dy = nullptr;    // [B, L, C]
  float* y = nullptr;           // forward: Y; gradient: dX
  float* dw = nullptr;          // [k, C]
};

// y[t] = (((bias + x[t−k+1]·w0) + x[t−k+2]·w1) + …) + x[t]·w_{k−1}, a position before 0 being a
// zero of the padding: Add(Bias, Mul(Slice(padded), Slice(W))) tap after tap.
template <typename V>
CB_INLINE V ForwardAt(const ConvJob& job, int64_t b, int64_t t, int64_t c) {
  const ConvShape& s = job.s;
  const int64_t C = s.channels;
  V acc = Load<V>(job.bias + c);
  for (int64_t j = 0; j < s.taps; ++j) {
    const int64_t src = t + j - (s.taps - 1);
    const V xv = src >= 0 ? Load<V>(job.x + (b * s.length + src) * C + c) : V{};
    acc = acc + xv * Load<V>(job.w + j * C + c);
  }
  return acc;
}

// dX[t] = ((dy[t]·w_{k−1} + dy[t+1]·w_{k−2}) + …) + dy[t+k−1]·w0, a position past L being a zero:
// the slices' gradients (Pads of dY·w_j) summed in the order autodiff met them, last tap first.
template <typename V>
CB_INLINE V InputGradAt(const ConvJob& job, int64_t b, int64_t t, int64_t c) {
  const ConvShape& s = job.s;
  const int64_t C = s.channels;
  const float* dy = job.dy + b * s.length * C + c;
  V acc = Load<V>(dy + t * C) * Load<V>(job.w + (s.taps - 1) * C + c);
  for (int64_t j = s.taps - 2; j >= 0; --j) {
    const int64_t src = t + (s.taps - 1 - j);
    acc = acc + (src < s.length ? Load<V>(dy + src * C) * Load<V>(job.w + j * C + c)
                                : V{});
  }
  return acc;
}

template <typename V, bool kGrad>
CB_INLINE void RowsOf(const ConvJob& job, int64_t r0, int64_t r1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t C = job.s.channels;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / job.s.length;
    const int64_t t = r % job.s.length;
    float* y = job.y + r * C;
    int64_t c = 0;
    for (; c + W <= C; c += W) {
      Store(y + c, kGrad ? InputGradAt<V>(job, b, t, c) : ForwardAt<V>(job, b, t, c));
    }
    for (; c < C; ++c) y[c] = kGrad ? InputGradAt<float>(job, b, t, c) : ForwardAt<float>(job, b, t, c);
  }
}

template <typename V>
CB_INLINE void ForwardRows(const ConvJob& job, int64_t r0, int64_t r1) {
  RowsOf<V, false>(job, r0, r1);
}

template <typename V>
CB_INLINE void InputGradRows(const ConvJob& job, int64_t r0, int64_t r1) {
  RowsOf<V, true>(job, r0, r1);
}

// dW[j, c] = Σ over rows (b, t) in order of dy[t]·x[t+j−k+1] (0 before the start), from 0:
// ColumnSums of Mul(dY, Slice(padded)), the rows in order. One unit holds every tap's sum for
// one vector of columns, so dY and X are read once.
template <typename V>
CB_INLINE void WeightGradColumns(const ConvJob& job, int64_t c0, int64_t c1,
                                 int64_t width) {
  const ConvShape& s = job.s;
  const int64_t C = s.channels;
  for (int64_t c = c0; c < c1; c += width) {
    V acc[kMaxTaps];
    for (int64_t j = 0; j < s.taps; ++j) acc[j] = V{};
    for (int64_t b = 0; b < s.batch; ++b) {
      const float* x = job.x + b * s.length * C + c;
      const float* dy = job.dy + b * s.length * C + c;
      for (int64_t t = 0; t < s.length; ++t) {
        const V d = Load<V>(dy + t * C);
        for (int64_t j = 0; j < s.taps; ++j) {
          const int64_t src = t + j - (s.taps - 1);
          acc[j] = acc[j] + d * (src >= 0 ? Load<V>(x + src * C) : V{});
        }
      }
    }
    for (int64_t j = 0; j < s.taps; ++j) Store(job.dw + j * C + c, acc[j]);
  }
}

// Units of dW: the vectors of columns, then the columns past the last whole vector one by one.
template <typename V>
CB_INLINE void WeightGradUnits(const ConvJob& job, int64_t u0, int64_t u1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t vectors = job.s.channels / W;
  for (int64_t u = u0; u < u1; ++u) {
    if (u < vectors) {
      WeightGradColumns<V>(job, u * W, u * W + W, W);
    } else {
      const int64_t c = vectors * W + (u - vectors);
      WeightGradColumns<float>(job, c, c + 1, 1);
    }
  }
}

CB_RANGE_AT_EVERY_WIDTH(ForwardRows, ConvJob, ForwardRows)
CB_RANGE_AT_EVERY_WIDTH(InputGradRows, ConvJob, InputGradRows)
CB_RANGE_AT_EVERY_WIDTH(WeightGradUnits, ConvJob, WeightGradUnits)

// ---------------------------------------------------------------------------------------------
// CausalDepthwiseConv1d(X [B, L, C], W [k, C], Bias [C]) -> Y [B, L, C].

OrtStatus* ComputeCausalDepthwiseConv1d(OrtKernelContext* ctx, Simd simd) {
  Shape xs, ws, bs;
  ConvJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "X", &xs, &job.x));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 1, "W", &ws, &job.w));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 2, "Bias", &bs, &job.bias));
  CB_RETURN_IF_ERROR(ReadConvShape("CausalDepthwiseConv1d", xs, ws, &job.s));
  if (bs.rank != 1 || bs.dims[0] != job.s.channels) {
    return Error("Cannot run CausalDepthwiseConv1d as Bias must be [C]: X " + ShapeString(xs) +
                 ", Bias " + ShapeString(bs));
  }
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, xs, &job.y));
  job.blocks = {job.s.batch * job.s.length, RowsPerBlock(job.s.channels * job.s.taps), simd};
  return RunBlocks<ConvJob, ForwardRowsSse2, ForwardRowsAvx2, ForwardRowsAvx512>(ctx, &job);
}

// ---------------------------------------------------------------------------------------------
// CausalDepthwiseConv1dGrad(dY [B, L, C], X [B, L, C], W [k, C]) -> (dX [B, L, C], dW [k, C]).

OrtStatus* ComputeCausalDepthwiseConv1dGrad(OrtKernelContext* ctx, Simd simd) {
  Shape dys, xs, ws;
  ConvJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "dY", &dys, &job.dy));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 1, "X", &xs, &job.x));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 2, "W", &ws, &job.w));
  CB_RETURN_IF_ERROR(ReadConvShape("CausalDepthwiseConv1dGrad", xs, ws, &job.s));
  if (!SameShape(dys, xs)) {
    return Error("Cannot run CausalDepthwiseConv1dGrad as dY must have X's shape: dY " +
                 ShapeString(dys) + ", X " + ShapeString(xs));
  }
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, xs, &job.y));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 1, ws, &job.dw));
  job.blocks = {job.s.batch * job.s.length, RowsPerBlock(job.s.channels * job.s.taps), simd};
  CB_RETURN_IF_ERROR(
      (RunBlocks<ConvJob, InputGradRowsSse2, InputGradRowsAvx2, InputGradRowsAvx512>(ctx, &job)));
  const int64_t width = LanesOf(simd);
  const int64_t vectors = job.s.channels / width;
  job.blocks = {vectors + (job.s.channels - vectors * width), 1, simd};
  return RunBlocks<ConvJob, WeightGradUnitsSse2, WeightGradUnitsAvx2, WeightGradUnitsAvx512>(
      ctx, &job);
}

}  // namespace

CB_REGISTER_OP("CausalDepthwiseConv1d", 3, 1, 0, ComputeCausalDepthwiseConv1d);
CB_REGISTER_OP("CausalDepthwiseConv1dGrad", 3, 2, 0, ComputeCausalDepthwiseConv1dGrad);

}  // namespace cb
