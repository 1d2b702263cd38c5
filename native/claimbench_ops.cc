// claimbench's native custom ops for ONNX Runtime (CPU, float32), domain "ai.claimbench". Each
// has an ONNX function definition in onnx/functions.ts (the portable engine runs those); the
// kernels here compute the same functions with their own rounding.
//
//   BiasAttention(QKV [B, T, 3C], Bias [H, T, T], Scale) -> Y [B, T, C]: multi-head attention
//     from the packed projections, softmax(Scale·q·kᵀ + Bias[h])·v per head (see "Fused
//     attention" below), and BiasAttentionGrad(dY, QKV, Bias, Scale) -> dQKV, its gradient.
//   GeluGrad(dY, X) -> dX = dY * (Phi(x) + x * phi(x)), the derivative of the exact (erf) GELU:
//     Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
//   RowLayerNorm(X, Scale, B) -> (Y, Mean, InvStd): LayerNormalization over the last axis with
//     ε = 1e-5 (see below).
//   LayerNormGrad(dY, X, Scale, Mean, InvStd) -> (dX, dScale, dBias): LayerNormalization's
//     gradients over the last axis from the forward statistics (see below).
//   ColumnSums(X [R, C]) -> Y [1, C]: each column's sum, with the same bits as ONNX Runtime's
//     ReduceSum over axis 0 (see below).
//   AdamW(P, M, V, G, Mask, 9 scalars) -> (P1, M1, V1): one AdamW step on flat vectors, with
//     the same bits as its ONNX definition (see below).
//   BiasResidual(X, Y, B) -> X + (Y + B), a residual around a linear layer (same bits as 2 Adds).
//   BiasGelu(X, B) -> (Y, Slope): GELU(X + B), exact (erf) form, and GELU'(X + B) (see below).
//   BiasGeluGrad(dY, Slope) -> (dY·Slope, its column sums): BiasGelu's gradient (see ColumnSums).
//   SumOfSquares(G [N]) -> Σ g², the train step's squared gradient norm (see below).
//   MatMulTransA(A [K, M], B [K, N]) -> Aᵀ·B [M, N], a weight gradient (see below).
//   MaskedCrossEntropy(Logits [..., V], Targets int32 [...], Mask [...]) -> Loss []: the mean
//     negative log-likelihood Σ Mask·(−log softmax(Logits)[target]) / Σ Mask, and
//     MaskedCrossEntropyGrad(dLoss, Logits, Targets, Mask) -> dLogits, its gradient (see below).
//   BiasSoftmax(X [..., T, S], B) -> Y = softmax(X + B) over the last axis. B's shape is a
//     suffix of X's where every dimension equals X's or is 1, and its last dimension equals S
//     (e.g. X [batch, H, T, S] with B [H, T, S] or [1, T, S]). B may hold -inf (causal masks).
//     A row whose every entry of X + B is -inf has no defined softmax; it yields all zeros (not
//     NaN), so that its SoftmaxGrad is zero too. NaN in a row gives NaN in that row.
//   SoftmaxGrad(dY, Y) -> dX = Y * (dY - rowsum(dY * Y)) over the last axis.
//   (BiasSoftmax and SoftmaxGrad are measured in bench/native_ops_bench.ts; the models use
//   BiasAttention, which does their work inside the attention.)
//
// Precision: float32 arithmetic as the standard-op compositions do it (X + B is rounded before
// the softmax, dY − Σ before the product), with row sums in double; exp and erfc within about
// 1 ulp. Against a float64 reference the tests measured up to 5.2e-7 relative error in Y (X + B
// rounded), and up to 1.8e-7 of the terms' scale in the gradients.
//
// Determinism: work is partitioned whole (rows, or attention heads) over ORT's intra-op thread
// pool and every element is computed by a fixed sequence of IEEE operations, so results do not
// depend on the thread count. exp and erfc are our own (below) rather than libm's, whose x86-64
// builds pick FMA variants by CPU at run time. Kernels are written once over a vector type of 4
// (SSE2, every x86-64), 8 (AVX2) or 16 (AVX-512F) lanes, picked at run time; lanes only ever hold
// different elements and reductions go in a fixed order (by position mod 4), and with
// -ffp-contract=off nothing is fused into an FMA (but in MatMulTransA, whose FMAs are explicit
// and correctly rounded on every path), so every x86-64 machine computes the same bits (the
// tests compare the paths).
//
// Build: g++ -O2 -fPIC -shared -std=c++17 -ffp-contract=off -fno-math-errno (see
// native/build.ts). Load with OrtApi::RegisterCustomOpsLibrary_V2, which calls RegisterCustomOps
// below.
//
// ABI: we do not include onnxruntime_c_api.h. The few declarations below were written from the
// facts in microsoft/onnxruntime include/onnxruntime/core/session/onnxruntime_c_api.h (the
// order of OrtApi's entries, which is append-only, and the layout of OrtCustomOp) and
// onnxruntime/core/session/custom_ops.cc (how OrtCustomOp::version gates which members ORT
// reads, and what KernelContext_ParallelFor does).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

// ---------------------------------------------------------------------------------------------
// ABI declarations

extern "C" {
struct OrtApi;
struct OrtStatus;
struct OrtSessionOptions;
struct OrtCustomOpDomain;
struct OrtKernelInfo;
struct OrtKernelContext;
struct OrtValue;
struct OrtTensorTypeAndShapeInfo;

// OrtApiBase: the struct OrtGetApiBase() returns.
struct OrtApiBase {
  const OrtApi* (*GetApi)(uint32_t version);
  const char* (*GetVersionString)();
};

// OrtCustomOp: 26 members in this order. Enums (element type, characteristic, memory type) are
// C enums, passed and returned as int.
struct OrtCustomOp {
  uint32_t version;
  void* (*CreateKernel)(const OrtCustomOp*, const OrtApi*, const OrtKernelInfo*);
  const char* (*GetName)(const OrtCustomOp*);
  const char* (*GetExecutionProviderType)(const OrtCustomOp*);
  int (*GetInputType)(const OrtCustomOp*, size_t index);
  size_t (*GetInputTypeCount)(const OrtCustomOp*);
  int (*GetOutputType)(const OrtCustomOp*, size_t index);
  size_t (*GetOutputTypeCount)(const OrtCustomOp*);
  void (*KernelCompute)(void* kernel, OrtKernelContext*);
  void (*KernelDestroy)(void* kernel);
  int (*GetInputCharacteristic)(const OrtCustomOp*, size_t index);
  int (*GetOutputCharacteristic)(const OrtCustomOp*, size_t index);
  int (*GetInputMemoryType)(const OrtCustomOp*, size_t index);
  int (*GetVariadicInputMinArity)(const OrtCustomOp*);
  int (*GetVariadicInputHomogeneity)(const OrtCustomOp*);
  int (*GetVariadicOutputMinArity)(const OrtCustomOp*);
  int (*GetVariadicOutputHomogeneity)(const OrtCustomOp*);
  OrtStatus* (*CreateKernelV2)(const OrtCustomOp*, const OrtApi*, const OrtKernelInfo*,
                               void** kernel);
  OrtStatus* (*KernelComputeV2)(void* kernel, OrtKernelContext*);
  OrtStatus* (*InferOutputShapeFn)(const OrtCustomOp*, void* shape_infer_context);
  int (*GetStartVersion)(const OrtCustomOp*);
  int (*GetEndVersion)(const OrtCustomOp*);
  size_t (*GetMayInplace)(int** input_index, int** output_index);
  void (*ReleaseMayInplace)(int* input_index, int* output_index);
  size_t (*GetAliasMap)(int** input_index, int** output_index);
  void (*ReleaseAliasMap)(int* input_index, int* output_index);
};
}

namespace {

// Version written into our OrtCustomOp structs. ORT reads GetInputMemoryType from version 13,
// CreateKernelV2/KernelComputeV2 from 16, and shape inference / opset range members from 17 on;
// 16 gives us the V2 entry points (errors returned as OrtStatus) and nothing we leave unset.
constexpr uint32_t kCustomOpVersion = 16;
// OrtApi version we ask for: the table must reach KernelContext_ParallelFor (entry 274).
constexpr uint32_t kApiVersion = 18;

constexpr int kOrtInvalidArgument = 2;  // OrtErrorCode ORT_INVALID_ARGUMENT
constexpr int kOrtFail = 1;             // OrtErrorCode ORT_FAIL
constexpr int kElementFloat = 1;        // ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT
constexpr int kElementInt32 = 6;        // ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32
constexpr int kRequired = 0;            // INPUT_OUTPUT_REQUIRED
constexpr int kMemTypeDefault = 0;      // OrtMemTypeDefault

// The OrtApi entries we call; LoadApi reads each from its index in the table (a struct of
// function pointers, 8 bytes per entry on 64-bit platforms).
struct Api {
  OrtStatus* (*CreateStatus)(int code, const char* msg);
  OrtStatus* (*CreateCustomOpDomain)(const char* domain, OrtCustomOpDomain** out);
  OrtStatus* (*CustomOpDomain_Add)(OrtCustomOpDomain*, const OrtCustomOp*);
  OrtStatus* (*AddCustomOpDomain)(OrtSessionOptions*, OrtCustomOpDomain*);
  OrtStatus* (*GetTensorMutableData)(OrtValue*, void** out);
  OrtStatus* (*GetDimensionsCount)(const OrtTensorTypeAndShapeInfo*, size_t* out);
  OrtStatus* (*GetDimensions)(const OrtTensorTypeAndShapeInfo*, int64_t* dims, size_t count);
  OrtStatus* (*GetTensorTypeAndShape)(const OrtValue*, OrtTensorTypeAndShapeInfo** out);
  OrtStatus* (*KernelContext_GetInput)(const OrtKernelContext*, size_t index, const OrtValue** out);
  OrtStatus* (*KernelContext_GetOutput)(OrtKernelContext*, size_t index, const int64_t* dims,
                                        size_t count, OrtValue** out);
  void (*ReleaseTensorTypeAndShapeInfo)(OrtTensorTypeAndShapeInfo*);
  // Calls fn(user_data, i) for i in [0, total) on the kernel's intra-op pool (inline without
  // one); num_batch 0 means one task per index.
  OrtStatus* (*KernelContext_ParallelFor)(const OrtKernelContext*, void (*fn)(void*, size_t),
                                          size_t total, size_t num_batch, void* user_data);
};

template <typename F>
void Load(F& slot, const OrtApi* api, size_t index) {
  void* entry;
  std::memcpy(&entry, reinterpret_cast<const char*>(api) + index * sizeof(void*), sizeof(entry));
  slot = reinterpret_cast<F>(entry);
}

Api LoadApi(const OrtApi* api) {
  Api a{};
  Load(a.CreateStatus, api, 0);
  Load(a.CreateCustomOpDomain, api, 26);
  Load(a.CustomOpDomain_Add, api, 27);
  Load(a.AddCustomOpDomain, api, 28);
  Load(a.GetTensorMutableData, api, 51);
  Load(a.GetDimensionsCount, api, 61);
  Load(a.GetDimensions, api, 62);
  Load(a.GetTensorTypeAndShape, api, 65);
  Load(a.KernelContext_GetInput, api, 90);
  Load(a.KernelContext_GetOutput, api, 91);
  Load(a.ReleaseTensorTypeAndShapeInfo, api, 99);
  Load(a.KernelContext_ParallelFor, api, 274);
  return a;
}

// Written by every RegisterCustomOps call, always with the same table (one ORT per process).
Api g_api{};

#define CB_RETURN_IF_ERROR(expr)            \
  do {                                      \
    OrtStatus* status_ = (expr);            \
    if (status_ != nullptr) return status_; \
  } while (0)

OrtStatus* Error(const std::string& msg) {
  return g_api.CreateStatus(kOrtInvalidArgument, msg.c_str());
}

// ---------------------------------------------------------------------------------------------
// Deterministic elementary functions on float32 lanes (GCC vector extensions), no libm.
//
// Each kernel is written once for a vector V of 4 lanes (SSE2, every x86-64) or 8 lanes (AVX2,
// chosen at run time). Both apply the same IEEE operations to each element in the same order,
// with no FMA (-ffp-contract=off, and the AVX2 code is not built with FMA enabled), and reduce
// in the same order (double accumulators indexed by element position mod 4), so the two paths
// give identical bits. Every element, tails included, goes through the same lane code.

typedef float V4 __attribute__((vector_size(16)));
typedef float V8 __attribute__((vector_size(32)));
typedef float V16 __attribute__((vector_size(64)));
typedef double D4 __attribute__((vector_size(32)));  // row sums, by element position mod 4

#define CB_INLINE inline __attribute__((always_inline))

// The 8-lane instantiations are always inlined into the AVX2 entry point, so no 32-byte vector
// crosses a call boundary compiled without AVX: GCC's ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

// Every lane = v (a broadcast; not 0 + v, which costs an add and turns −0 into +0).
template <typename V>
CB_INLINE V Splat(float v) {
  V r;
  for (size_t i = 0; i < sizeof(V) / sizeof(float); ++i) r[i] = v;
  return r;
}

template <typename V>
CB_INLINE V Load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename V>
CB_INLINE void Store(float* p, const V& v) {
  std::memcpy(p, &v, sizeof(v));
}

// The first `n` entries of p (n < lanes), the rest `pad`.
template <typename V>
CB_INLINE V LoadTail(const float* p, int64_t n, float pad) {
  float tmp[sizeof(V) / sizeof(float)];
  for (size_t i = 0; i < sizeof(V) / sizeof(float); ++i) tmp[i] = pad;
  for (int64_t i = 0; i < n; ++i) tmp[i] = p[i];
  return Load<V>(tmp);
}

template <typename V>
CB_INLINE void StoreTail(float* p, int64_t n, const V& v) {
  float tmp[sizeof(V) / sizeof(float)];
  Store(tmp, v);
  for (int64_t i = 0; i < n; ++i) p[i] = tmp[i];
}

// Adds v's lanes to the position-mod-4 accumulators, four lanes at a time, in lane order.
template <typename V>
CB_INLINE void Accumulate(D4& acc, const V& v) {
  for (size_t g = 0; g < sizeof(V) / sizeof(float); g += 4) {
    acc += D4{v[g], v[g + 1], v[g + 2], v[g + 3]};
  }
}

CB_INLINE double SumLanes(const D4& acc) { return (acc[0] + acc[1]) + (acc[2] + acc[3]); }

// Whether every lane of v is −inf (a masked stretch of a causal row).
template <typename V>
CB_INLINE bool AllMinusInf(const V& v) {
  const auto mask = v == Splat<V>(-HUGE_VALF);  // lanes all ones or zero
  uint64_t words[sizeof(V) / sizeof(uint64_t)];
  std::memcpy(words, &mask, sizeof(words));
  uint64_t all = ~uint64_t{0};
  for (uint64_t w : words) all &= w;
  return all == ~uint64_t{0};
}

// exp(x) = 2^k · e^r with k = round(x / ln 2) and r = x − k·ln 2 (Cody–Waite: ln 2 split so that
// k·kLn2Hi is exact), |r| ≤ ln(2)/2; e^r by its Taylor polynomial to r^7 (truncation 5e-9
// relative), about 1 ulp in all. Below −87.33 (FLT_MIN's log) the result is exactly 0, so
// exp(−inf) = 0; above 88 it saturates at e^88 (our callers pass x ≤ 0). NaN stays NaN.
template <typename V>
CB_INLINE V Exp(const V& x) {
  using VI = decltype(x < x);  // the int32 vector of the same width
  const V lo = Splat<V>(-87.33f);
  const V hi = Splat<V>(88.0f);
  V xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const V round = Splat<V>(12582912.0f);  // 1.5 · 2^23: adding it rounds to an integer
  const V t = xc * 1.44269504f + round;
  const V k = t - round;
  const V r = (xc - k * 0.693359375f) - k * -2.12194440e-4f;
  V p = Splat<V>(1.0f / 5040.0f);
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // t's low mantissa bits hold k as a two's-complement integer; vector casts between types of
  // the same size reinterpret the bits.
  const VI bits = ((VI)t - (VI)round + 127) << 23;
  const V e = p * (V)bits;
  return x < lo ? Splat<V>(0.0f) : e;
}

// erfc(a) for a ≥ 0 as t · Q(t) · e^(−a²) with t = 1 / (1 + a/2): Q is smooth on t ∈ (0, 1]
// (from 1/(2√π) to 1), and its degree-10 Chebyshev interpolant (fitted for this file with
// mpmath at 40 digits, written here in the monomial basis of t) has relative error below 2.8e-8
// on the whole range, under float32's half ulp.
constexpr float kErfcQ[11] = {
    0.282094799651273f,  0.2820928673346307f,   0.24691356121779123f, 0.17494859631541002f,
    0.0958271993931922f, -0.06795827531374868f, 0.1518851796289982f,  -0.4824747605145184f,
    0.5168995401022985f, -0.245580036275335f,   0.0453513366235701f,
};

// Phi(x) and phi(x) of the standard normal; z = x/√2 so that e^(−z²) = e^(−x²/2) serves both.
template <typename V>
CB_INLINE void NormalCdfPdf(const V& x, V* cdf, V* pdf) {
  const V zero = Splat<V>(0.0f);
  const V z = x * 0.707106781f;
  const V a = z < zero ? -z : z;
  const V t = 1.0f / (1.0f + 0.5f * a);
  V q = Splat<V>(kErfcQ[10]);
  for (int i = 9; i >= 0; --i) q = q * t + kErfcQ[i];
  const V e = Exp(-(z * z));
  const V erfc_a = t * q * e;
  *cdf = z >= zero ? 1.0f - 0.5f * erfc_a : 0.5f * erfc_a;
  *pdf = e * 0.398942280f;  // 1/√(2π)
}

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
// Row kernels: each reads and writes its row once (the row stays in cache between its loops).
// A short last group of lanes is padded with values that cannot change the result.

template <typename V>
CB_INLINE void BiasSoftmaxRow(const float* x, const float* b, float* y, int64_t n) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const float inf = HUGE_VALF;
  // Z = X + B (float32, as Add then Softmax would round it) and its maximum (exact, so the lane
  // order does not matter). Z is recomputed below rather than stored: same bits, fewer stores.
  V mv = Splat<V>(-inf);
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    const V z = Load<V>(x + j) + Load<V>(b + j);
    mv = z > mv ? z : mv;
  }
  if (j < n) {
    const V z = LoadTail<V>(x + j, n - j, -inf) + LoadTail<V>(b + j, n - j, 0.0f);
    mv = z > mv ? z : mv;
  }
  float m = -inf;
  for (int64_t i = 0; i < W; ++i) m = mv[i] > m ? mv[i] : m;
  if (m == -inf) {  // every entry −inf (a fully masked row): zeros, not NaN
    for (j = 0; j < n; ++j) y[j] = 0.0f;
    return;
  }
  // E = exp(Z − max), summed in double.
  D4 acc = {};
  for (j = 0; j + W <= n; j += W) {
    const V z = Load<V>(x + j) + Load<V>(b + j);
    if (AllMinusInf(z)) {  // exp(−inf) = 0 adds nothing: skip the polynomial
      Store(y + j, Splat<V>(0.0f));
      continue;
    }
    const V e = Exp(z - m);
    Store(y + j, e);
    Accumulate(acc, e);
  }
  if (j < n) {
    const V z = LoadTail<V>(x + j, n - j, -inf) + LoadTail<V>(b + j, n - j, 0.0f);
    const V e = Exp(z - m);  // padding: exp(−inf) = 0
    StoreTail(y + j, n - j, e);
    Accumulate(acc, e);
  }
  const float inv = static_cast<float>(1.0 / SumLanes(acc));
  for (j = 0; j + W <= n; j += W) Store(y + j, Load<V>(y + j) * inv);
  for (; j < n; ++j) y[j] *= inv;
}

template <typename V>
CB_INLINE void SoftmaxGradRow(const float* dy, const float* y, float* dx, int64_t n) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  // s = Σ dY·Y: float products, summed in double.
  D4 acc = {};
  int64_t j = 0;
  for (; j + W <= n; j += W) Accumulate(acc, Load<V>(dy + j) * Load<V>(y + j));
  if (j < n) Accumulate(acc, LoadTail<V>(dy + j, n - j, 0.0f) * LoadTail<V>(y + j, n - j, 0.0f));
  const float s = static_cast<float>(SumLanes(acc));
  for (j = 0; j + W <= n; j += W) Store(dx + j, Load<V>(y + j) * (Load<V>(dy + j) - s));
  for (; j < n; ++j) dx[j] = y[j] * (dy[j] - s);
}

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

// Vector widths a kernel may run at, chosen once per kernel (CreateKernelV2).
enum Simd { kSse2 = 0, kAvx2 = 1, kAvx512 = 2 };

// ---------------------------------------------------------------------------------------------
// Tensors and the row partition

struct Shape {
  int64_t dims[16];
  size_t rank = 0;
};

OrtStatus* GetShape(const OrtValue* v, Shape* shape, const char* what) {
  OrtTensorTypeAndShapeInfo* info = nullptr;
  CB_RETURN_IF_ERROR(g_api.GetTensorTypeAndShape(v, &info));
  OrtStatus* st = g_api.GetDimensionsCount(info, &shape->rank);
  if (st == nullptr && shape->rank > 16) {
    st = Error(std::string("Cannot run claimbench op as ") + what + " has rank above 16");
  }
  if (st == nullptr) st = g_api.GetDimensions(info, shape->dims, shape->rank);
  g_api.ReleaseTensorTypeAndShapeInfo(info);
  return st;
}

std::string ShapeString(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.rank; ++i) {
    if (i) out += ", ";
    out += std::to_string(s.dims[i]);
  }
  return out + "]";
}

// Rows of about kBlockElems elements form one task: small enough to balance two threads, large
// enough that the pool's per-task cost is noise.
constexpr int64_t kBlockElems = 16384;

// Blocks of work: the kernels split `count` units (rows, columns or elements) into blocks of
// `per_block` over ORT's pool, and run each block at the width the kernel was created with.
struct Blocks {
  int64_t count = 0;
  int64_t per_block = 1;
  Simd simd = kSse2;
};

// Runs units [i0, i1) of a job at one vector width.
template <typename Job>
using RangeFn = void (*)(const Job&, int64_t, int64_t);

// Defines Name##Sse2, Name##Avx2 and Name##Avx512: Body<V4>, <V8> and <V16> over a job's units
// [i0, i1), each compiled for its instruction set.
#define CB_RANGE_AT_EVERY_WIDTH(Name, Job, Body)                                              \
  void Name##Sse2(const Job& job, int64_t i0, int64_t i1) { Body<V4>(job, i0, i1); }           \
  __attribute__((target("avx2"))) void Name##Avx2(const Job& job, int64_t i0, int64_t i1) {   \
    Body<V8>(job, i0, i1);                                                                     \
  }                                                                                            \
  __attribute__((target("avx512f"))) void Name##Avx512(const Job& job, int64_t i0, int64_t i1) { \
    Body<V16>(job, i0, i1);                                                                    \
  }

template <typename Job, RangeFn<Job> Sse2, RangeFn<Job> Avx2, RangeFn<Job> Avx512>
void RunBlockOf(void* data, size_t block) {
  const Job& job = *static_cast<const Job*>(data);
  const Blocks& b = job.blocks;
  const int64_t i0 = static_cast<int64_t>(block) * b.per_block;
  const int64_t i1 = i0 + b.per_block < b.count ? i0 + b.per_block : b.count;
  if (b.simd == kAvx512) {
    Avx512(job, i0, i1);
  } else if (b.simd == kAvx2) {
    Avx2(job, i0, i1);
  } else {
    Sse2(job, i0, i1);
  }
}

// Runs every block of `job` (job->blocks set), in order on this thread when there is one block
// or no pool.
template <typename Job, RangeFn<Job> Sse2, RangeFn<Job> Avx2, RangeFn<Job> Avx512>
OrtStatus* RunBlocks(OrtKernelContext* ctx, Job* job) {
  const Blocks& b = job->blocks;
  if (b.count == 0) return nullptr;
  const int64_t blocks = (b.count + b.per_block - 1) / b.per_block;
  auto run = RunBlockOf<Job, Sse2, Avx2, Avx512>;
  if (blocks == 1 || g_api.KernelContext_ParallelFor == nullptr) {
    for (int64_t i = 0; i < blocks; ++i) run(job, static_cast<size_t>(i));
    return nullptr;
  }
  // num_batch 0: ORT's TrySimpleParallelFor, one call per block.
  return g_api.KernelContext_ParallelFor(ctx, run, static_cast<size_t>(blocks), 0, job);
}

// Rows of n elements per block: about kBlockElems elements, at least one row.
int64_t RowsPerBlock(int64_t n) { return n >= kBlockElems ? 1 : kBlockElems / n; }

struct RowJob {
  Blocks blocks;             // rows
  int64_t n = 0;             // row length (last axis)
  const float* a = nullptr;  // first input
  const float* b = nullptr;  // second input (BiasSoftmax: the bias)
  float* out = nullptr;
  // BiasSoftmax: row r of X reads bias row Σ idx_d · bias_row_stride[d] over X's leading dims.
  size_t lead_rank = 0;
  int64_t lead_dims[16] = {};
  int64_t bias_row_stride[16] = {};
  int op = 0;  // 0 BiasSoftmax, 1 SoftmaxGrad, 2 GeluGrad
};

// Walks X's leading indices row by row (an odometer), keeping B's matching row offset, so a
// block pays for one division per leading dimension, not one per row.
struct BiasCursor {
  int64_t idx[16] = {};
  int64_t offset = 0;  // in rows of B

  BiasCursor(const RowJob& job, int64_t r) {
    for (size_t d = job.lead_rank; d-- > 0;) {
      idx[d] = r % job.lead_dims[d];
      r /= job.lead_dims[d];
      offset += idx[d] * job.bias_row_stride[d];
    }
  }

  void Next(const RowJob& job) {
    for (size_t d = job.lead_rank; d-- > 0;) {
      offset += job.bias_row_stride[d];
      if (++idx[d] < job.lead_dims[d]) return;
      offset -= idx[d] * job.bias_row_stride[d];
      idx[d] = 0;
    }
  }
};

// Rows [r0, r1) of a row job at width V.
template <typename V>
CB_INLINE void RowOpRows(const RowJob& job, int64_t r0, int64_t r1) {
  BiasCursor bias(job, job.op == 0 ? r0 : 0);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = r * job.n;
    const float* b = job.b + (job.op == 0 ? bias.offset * job.n : o);
    if (job.op == 0) {
      BiasSoftmaxRow<V>(job.a + o, b, job.out + o, job.n);
      bias.Next(job);
    } else if (job.op == 1) {
      SoftmaxGradRow<V>(job.a + o, b, job.out + o, job.n);
    } else {
      GeluGradRow<V>(job.a + o, b, job.out + o, job.n);
    }
  }
}

CB_RANGE_AT_EVERY_WIDTH(RowOpRows, RowJob, RowOpRows)

OrtStatus* RunRows(OrtKernelContext* ctx, RowJob* job) {
  if (job->n == 0) return nullptr;
  return RunBlocks<RowJob, RowOpRowsSse2, RowOpRowsAvx2, RowOpRowsAvx512>(ctx, job);
}

struct Io {
  const float* in0 = nullptr;
  const float* in1 = nullptr;
  Shape s0;
  Shape s1;
};

// Input `index` (named `what` in errors): its shape and data, only read (the API has one
// accessor for both directions).
OrtStatus* GetInputData(OrtKernelContext* ctx, size_t index, const char* what, Shape* shape,
                        const float** data) {
  const OrtValue* v = nullptr;
  CB_RETURN_IF_ERROR(g_api.KernelContext_GetInput(ctx, index, &v));
  if (v == nullptr) return Error(std::string("Cannot run claimbench op as ") + what + " is missing");
  CB_RETURN_IF_ERROR(GetShape(v, shape, what));
  void* p = nullptr;
  CB_RETURN_IF_ERROR(g_api.GetTensorMutableData(const_cast<OrtValue*>(v), &p));
  *data = static_cast<const float*>(p);
  return nullptr;
}

// Output `index` of `shape`, allocated by ORT.
OrtStatus* MakeOutputAt(OrtKernelContext* ctx, size_t index, const Shape& shape, float** out) {
  OrtValue* v = nullptr;
  CB_RETURN_IF_ERROR(g_api.KernelContext_GetOutput(ctx, index, shape.dims, shape.rank, &v));
  void* p = nullptr;
  CB_RETURN_IF_ERROR(g_api.GetTensorMutableData(v, &p));
  *out = static_cast<float*>(p);
  return nullptr;
}

OrtStatus* ReadInputs(OrtKernelContext* ctx, Io* io) {
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "input 0", &io->s0, &io->in0));
  return GetInputData(ctx, 1, "input 1", &io->s1, &io->in1);
}

// The number of rows of a tensor split along its last axis: the product of its leading dims.
int64_t LeadingRows(const Shape& s) {
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < s.rank; ++i) rows *= s.dims[i];
  return rows;
}

// A row job over the rows of `s`'s last axis, run at width `simd`.
void SplitRows(const Shape& s, Simd simd, RowJob* job) {
  job->n = s.rank == 0 ? 1 : s.dims[s.rank - 1];
  job->blocks = {LeadingRows(s), job->n == 0 ? 1 : RowsPerBlock(job->n), simd};
}

OrtStatus* ComputeBiasSoftmax(OrtKernelContext* ctx, Simd simd) {
  Io io;
  CB_RETURN_IF_ERROR(ReadInputs(ctx, &io));
  const Shape& xs = io.s0;
  const Shape& bs = io.s1;
  bool ok = xs.rank >= 1 && bs.rank >= 1 && bs.rank <= xs.rank &&
            bs.dims[bs.rank - 1] == xs.dims[xs.rank - 1];
  for (size_t i = 0; ok && i < bs.rank; ++i) {
    const int64_t bd = bs.dims[bs.rank - 1 - i];
    ok = bd == 1 || bd == xs.dims[xs.rank - 1 - i];
  }
  if (!ok) {
    return Error("Cannot run BiasSoftmax as the bias shape " + ShapeString(bs) +
                 " is not a suffix broadcast of X's " + ShapeString(xs) +
                 " with the same last dimension");
  }
  RowJob job;
  job.op = 0;
  SplitRows(xs, simd, &job);
  job.lead_rank = xs.rank - 1;
  // Row strides of B, counted in rows of length S, aligned with X's leading dims; 0 where B
  // broadcasts (dimension 1 or absent).
  int64_t stride = 1;
  for (size_t i = xs.rank - 1; i-- > 0;) {
    job.lead_dims[i] = xs.dims[i];
    const size_t from_end = xs.rank - 1 - i;  // 1 for the T axis
    if (from_end < bs.rank) {
      const int64_t bd = bs.dims[bs.rank - 1 - from_end];
      job.bias_row_stride[i] = bd == 1 ? 0 : stride;
      stride *= bd;
    } else {
      job.bias_row_stride[i] = 0;
    }
  }
  job.a = io.in0;
  job.b = io.in1;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, xs, &job.out));
  return RunRows(ctx, &job);
}

OrtStatus* ComputeSameShape(OrtKernelContext* ctx, int op, const char* name, Simd simd) {
  Io io;
  CB_RETURN_IF_ERROR(ReadInputs(ctx, &io));
  bool same = io.s0.rank == io.s1.rank;
  for (size_t i = 0; same && i < io.s0.rank; ++i) same = io.s0.dims[i] == io.s1.dims[i];
  if (!same) {
    return Error(std::string("Cannot run ") + name + " as its inputs differ in shape: " +
                 ShapeString(io.s0) + " vs " + ShapeString(io.s1));
  }
  RowJob job;
  job.op = op;
  SplitRows(io.s0, simd, &job);
  job.a = io.in0;
  job.b = io.in1;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, io.s0, &job.out));
  return RunRows(ctx, &job);
}

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
// (d ascending) + Bias_ij; m = max s; e_j = exp(s_j − m) (Exp above); z = Σ e_j (double, by
// position mod 4 as the row kernels above); p_j = e_j·float(1/z); y = Σ_j p_j·v_j as two partial
// sums over alternate keys, added at the end. The gradient recomputes p the same way, then
// dp_j = Σ_d dy_d·v_jd, c = float(Σ_j p_j·dp_j) (double, by position mod 4),
// ds_j = p_j·(dp_j − c), dq = (Σ_j ds_j·k_j)·Scale; after all rows, dv_j = Σ_i p_ij·dy_i and
// dk_j = (Σ_i ds_ij·q_i)·Scale over the rows that computed key j (partial sums as for y).
// Vector lanes only ever hold different elements, so the SSE2 and AVX2 paths and every thread
// count give the same bits. The AVX2 and AVX-512 paths run causal heads (CausalHead) and
// Hard-ALiBi's windowed rows (BandRows) with one query row per lane rather than one key per
// lane, in the same order per element (see there); SSE2 keeps one row at a time, the reference
// the tests compare with.

constexpr float kMaskedBias = -1e8f;

// out[d] = Σ_{r = r0..r1} w[r·ws] · rows[r·rs + d] for d in [d0, d0 + NV·W), in registers: two
// partial sums per lane, over rows r0, r0 + 2, … and r0 + 1, r0 + 3, … (two chains hide the add
// latency), added at the end.
template <typename V, int NV, bool Scaled>
CB_INLINE void CombineRows(const float* w, int64_t ws, const float* rows, int64_t rs, int64_t r0,
                           int64_t r1, int64_t d0, float scale, float* out) {
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

// out[0, hs) = Σ_{r = r0..r1} w[r·ws] · rows[r·rs + ·] (0 when r0 > r1), as CombineRows; then
// times scale where Scaled (in registers: the same product as scaling the stored sum).
template <typename V, bool Scaled>
CB_INLINE void Combine(const float* w, int64_t ws, const float* rows, int64_t rs, int64_t hs,
                       int64_t r0, int64_t r1, float scale, float* out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  int64_t d0 = 0;
  while (d0 + W <= hs) {
    const int64_t nv = (hs - d0) / W < 4 ? (hs - d0) / W : 4;
    if (nv == 4) CombineRows<V, 4, Scaled>(w, ws, rows, rs, r0, r1, d0, scale, out);
    else if (nv == 3) CombineRows<V, 3, Scaled>(w, ws, rows, rs, r0, r1, d0, scale, out);
    else if (nv == 2) CombineRows<V, 2, Scaled>(w, ws, rows, rs, r0, r1, d0, scale, out);
    else CombineRows<V, 1, Scaled>(w, ws, rows, rs, r0, r1, d0, scale, out);
    d0 += nv * W;
  }
  // Dims left over from wide vectors (heads of 6 dims, say), 4 at a time.
  for (; W > 4 && d0 + 4 <= hs; d0 += 4) {
    CombineRows<V4, 1, Scaled>(w, ws, rows, rs, r0, r1, d0, scale, out);
  }
  for (; d0 < hs; ++d0) {  // the same partial sums, one lane
    float even = 0.0f, odd = 0.0f;
    for (int64_t r = r0; r <= r1; ++r) {
      if ((r - r0) % 2 == 0) even = even + rows[r * rs + d0] * w[r * ws];
      else odd = odd + rows[r * rs + d0] * w[r * ws];
    }
    out[d0] = Scaled ? (even + odd) * scale : even + odd;
  }
}

// s[j] = Σ_d a[d] · bt[d·ld + j] for NC groups of W keys from j: two partial sums per lane, over
// the even and the odd d (independent chains), added at the end.
template <typename V, int NC>
CB_INLINE void DotGroups(const float* a, const float* bt, int64_t ld, int64_t hs, int64_t j,
                         float* s) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  V even[NC], odd[NC];
#pragma GCC unroll 4
  for (int c = 0; c < NC; ++c) even[c] = odd[c] = Splat<V>(0.0f);
  int64_t d = 0;
  for (; d + 1 < hs; d += 2) {
    const V ae = Splat<V>(a[d]);
    const V ao = Splat<V>(a[d + 1]);
    const float* be = bt + d * ld + j;
    const float* bo = be + ld;
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) {
      even[c] = even[c] + Load<V>(be + c * W) * ae;
      odd[c] = odd[c] + Load<V>(bo + c * W) * ao;
    }
  }
  if (d < hs) {
    const V ae = Splat<V>(a[d]);
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) even[c] = even[c] + Load<V>(bt + d * ld + j + c * W) * ae;
  }
#pragma GCC unroll 4
  for (int c = 0; c < NC; ++c) Store(s + j + c * W, even[c] + odd[c]);
}

// As DotGroups over [lo, hi]. bt's rows are padded so that the last group may read, and s be
// written, up to W − 1 entries past hi.
template <typename V>
CB_INLINE void RowDots(const float* a, const float* bt, int64_t ld, int64_t hs, int64_t lo,
                       int64_t hi, float* s) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  int64_t j = lo;
  for (; j + 4 * W <= hi + 1; j += 4 * W) DotGroups<V, 4>(a, bt, ld, hs, j, s);
  const int64_t left = (hi + 1 - j + W - 1) / W;  // groups still to do, 0..4
  if (left == 4) DotGroups<V, 4>(a, bt, ld, hs, j, s);
  else if (left == 3) DotGroups<V, 3>(a, bt, ld, hs, j, s);
  else if (left == 2) DotGroups<V, 2>(a, bt, ld, hs, j, s);
  else if (left == 1) DotGroups<V, 1>(a, bt, ld, hs, j, s);
}

// The largest lane of v (exact, so the order of the pairwise steps does not matter).
template <typename V>
CB_INLINE float MaxLane(const V& lanes) {
  V v = lanes;
  using VI = decltype(v < v);
  constexpr int W = sizeof(V) / sizeof(float);
  for (int half = W / 2; half >= 1; half /= 2) {
    VI idx;
    for (int l = 0; l < W; ++l) idx[l] = l ^ half;
    const V o = __builtin_shuffle(v, idx);
    v = o > v ? o : v;
  }
  return v[0];
}

// Each lane's index: 0, 1, 2, …
template <typename V>
CB_INLINE auto LaneIndex() {
  decltype(V{} < V{}) lane;
  for (size_t l = 0; l < sizeof(V) / sizeof(float); ++l) lane[l] = static_cast<int>(l);
  return lane;
}

// The first n lanes of v (n ≥ 1), the others `pad`.
template <typename V>
CB_INLINE V Keep(const V& v, int64_t n, float pad) {
  return LaneIndex<V>() < static_cast<int>(n) ? v : Splat<V>(pad);
}

// p[lo, hi] = softmax(p + bias) over [lo, hi], in place: the scores plus the bias row, their
// maximum, e = exp(· − max), z = Σ e in double by position mod 4, p = e · float(1/z). Whole
// groups of W run past hi into the row's padding, which is scratch. bias may be read up to
// bias[bias_end − 1].
template <typename V>
CB_INLINE void SoftmaxInPlace(float* p, const float* bias, int64_t bias_end, int64_t lo,
                              int64_t hi) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const float inf = HUGE_VALF;
  V mv = Splat<V>(-inf);
  int64_t j = lo;
  for (; j + W <= hi + 1; j += W) {
    const V z = Load<V>(p + j) + Load<V>(bias + j);
    Store(p + j, z);
    mv = z > mv ? z : mv;
  }
  if (j <= hi) {  // p's row is padded; the bias row is read past hi only within the tensor
    const V b = j + W <= bias_end ? Load<V>(bias + j) : LoadTail<V>(bias + j, bias_end - j, 0.0f);
    const V z = Keep(Load<V>(p + j) + b, hi + 1 - j, -inf);
    Store(p + j, z);
    mv = z > mv ? z : mv;
  }
  const float m = MaxLane(mv);
  D4 acc = {};
  for (j = lo; j <= hi; j += W) {  // the tail's padding holds −inf: exp gives 0
    const V e = Exp(Load<V>(p + j) - m);
    Store(p + j, e);
    Accumulate(acc, e);
  }
  const V inv = Splat<V>(static_cast<float>(1.0 / SumLanes(acc)));
  for (j = lo; j <= hi; j += W) Store(p + j, Load<V>(p + j) * inv);
}

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
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t T = job.T, hs = job.hs, ld = job.ld, C = job.H * hs, rs = 3 * C;
  const bool grad = dy != nullptr;
  float* p = w.p + (grad ? i * ld : 0);
  float* qs = w.qs;
  for (int64_t d = 0; d < hs; ++d) qs[d] = q[i * rs + d] * job.scale;
  RowDots<V>(qs, w.kt, ld, hs, l, u, p);
  SoftmaxInPlace<V>(p, bias + i * T, T * T - i * T, l, u);
  if (!grad) return p;
  // dp_j = dy_i · v_j (in dS's row), c = Σ_j p_j·dp_j, ds_j = p_j·(dp_j − c).
  float* ds = w.ds + i * ld;
  RowDots<V>(dy + i * C, w.vt, ld, hs, l, u, ds);
  D4 acc = {};
  int64_t j = l;
  for (; j + W <= u + 1; j += W) Accumulate(acc, Load<V>(p + j) * Load<V>(ds + j));
  if (j <= u) Accumulate(acc, Keep(Load<V>(p + j) * Load<V>(ds + j), u + 1 - j, 0.0f));
  const float c = static_cast<float>(SumLanes(acc));
  for (j = l; j <= u; j += W) Store(ds + j, Load<V>(p + j) * (Load<V>(ds + j) - c));
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

template <typename V>
struct Doubles;  // a vector of doubles with as many lanes as V
template <>
struct Doubles<V8> {
  typedef double Type __attribute__((vector_size(64)));
};
template <>
struct Doubles<V16> {
  typedef double Type __attribute__((vector_size(128)));
};

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
      Combine<VC, false>(w.p, 1, v, rs, hs, l0 + r, l0 + r + N - 1, 1.0f, out + (i0 + r) * os);
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
    Combine<VC, true>(w.ds + (i0 + r) * ld, 1, k, rs, hs, l0 + r, l0 + r + N - 1, job.scale,
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

// dst[d·tp + r] = src[r·rs + d]·scale (× scale only where Scaled) for r < rows, d < hs; zeros
// for r in [rows, tp) (tp a multiple of W).
template <typename V, bool Scaled>
CB_INLINE void TransposeRows(const float* src, int64_t rs, int64_t rows, int64_t hs, float scale,
                             float* dst, int64_t tp) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  for (int64_t r0 = 0; r0 < tp; r0 += W) {
    for (int64_t d0 = 0; d0 < hs; d0 += W) {
      const int64_t nd = std::min(W, hs - d0);
      V a[W];
#pragma GCC unroll 16
      for (int64_t r = 0; r < W; ++r) {
        const float* row = src + (r0 + r) * rs + d0;
        a[r] = r0 + r >= rows ? Splat<V>(0.0f) : nd == W ? Load<V>(row) : LoadTail<V>(row, nd, 0.0f);
        if (Scaled) a[r] = a[r] * Splat<V>(scale);
      }
      TransposeBlock(a);
      for (int64_t d = 0; d < nd; ++d) Store(dst + (d0 + d) * tp + r0, a[d]);
    }
  }
}

// out[r·os + d] = tile[d·W + r] for r < rows (≤ W), d < hs.
template <typename V>
CB_INLINE void StoreTransposed(const float* tile, int64_t hs, int64_t rows, float* out,
                               int64_t os) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  for (int64_t d0 = 0; d0 < hs; d0 += W) {
    const int64_t nd = std::min(W, hs - d0);
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

// out[d·W + r] = Σ_{j ≤ i0 + r, j < nk} pt[j·pld + r] · rows[j·rs + d], times scale where
// Scaled, for d in [0, hs): two chains by key parity, as CombineRows. Lanes whose row ends
// before key j skip it.
template <typename V, int DC, bool Scaled>
CB_INLINE void BlockCombineDims(const float* pt, int64_t pld, const float* rows, int64_t rs,
                                int64_t d0, int64_t i0, int64_t nk, float scale, float* out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const auto lane = LaneIndex<V>();
  V even[DC], odd[DC];
#pragma GCC unroll 8
  for (int c = 0; c < DC; ++c) even[c] = odd[c] = Splat<V>(0.0f);
  const int64_t full = std::min(nk, i0 + 1);  // keys every lane's row reaches
  int64_t j = 0;
  for (; j + 1 < full; j += 2) {
    const V pe = Load<V>(pt + j * W);
    const V po = Load<V>(pt + (j + 1) * pld);
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
CB_INLINE void BlockCombine(const float* pt, int64_t pld, const float* rows, int64_t rs,
                            int64_t hs, int64_t i0, int64_t nk, float scale, float* out) {
  int64_t d0 = 0;
  for (; d0 + 4 <= hs; d0 += 4) {
    BlockCombineDims<V, 4, Scaled>(pt, pld, rows, rs, d0, i0, nk, scale, out);
  }
  for (; d0 < hs; ++d0) BlockCombineDims<V, 1, Scaled>(pt, pld, rows, rs, d0, i0, nk, scale, out);
}

// out[d·W + l] = Σ_{i = j0 + l .. T − 1} wt[i·ld + j0 + l] · rows[i·rs + d] (× scale where
// Scaled): dK's or dV's rows of keys j0 .. j0 + W − 1, one key per lane, from weights kept rows ×
// keys. Combine sums a key's rows in two chains, from its first row by parity; here A takes the
// rows at even distance from j0 and B the others, so for an even lane A is that chain and B the
// other, for an odd lane the reverse, and A + B = B + A is Combine's sum. Lanes skip rows before
// their key.
template <typename V, int DC, bool Scaled>
CB_INLINE void KeyBlockCombineDims(const float* wt, int64_t ld, const float* rows, int64_t rs,
                                   int64_t d0, int64_t j0, int64_t T, float scale, float* out) {
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
  for (int c = 0; c < DC; ++c) {
    const V sum = a[c] + b[c];
    Store(out + (d0 + c) * W, Scaled ? sum * Splat<V>(scale) : sum);
  }
}

template <typename V, bool Scaled>
CB_INLINE void KeyBlockCombine(const float* wt, int64_t ld, const float* rows, int64_t rs,
                               int64_t hs, int64_t j0, int64_t T, float scale, float* out) {
  int64_t d0 = 0;
  for (; d0 + 8 <= hs; d0 += 8) {
    KeyBlockCombineDims<V, 8, Scaled>(wt, ld, rows, rs, d0, j0, T, scale, out);
  }
  for (; d0 + 4 <= hs; d0 += 4) {
    KeyBlockCombineDims<V, 4, Scaled>(wt, ld, rows, rs, d0, j0, T, scale, out);
  }
  for (; d0 < hs; ++d0) {
    KeyBlockCombineDims<V, 1, Scaled>(wt, ld, rows, rs, d0, j0, T, scale, out);
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
    for (int64_t c = 0; c < W; ++c) a[c] = j0 + c < nk ? Load<V>(tile + (j0 + c) * W) : Splat<V>(0.0f);
    TransposeBlock(a);
    for (int64_t r = 0; r < rows; ++r) Store(m + (i0 + r) * ld + j0, a[r]);
  }
}

// s lane r = Σ_d a[d·lda + r] · rows[j·rs + d] over even and odd d, as DotGroups.
template <typename V>
CB_INLINE V BlockDot(const float* a, int64_t lda, const float* row, int64_t hs) {
  V even = Splat<V>(0.0f), odd = Splat<V>(0.0f);
  int64_t d = 0;
  for (; d + 1 < hs; d += 2) {
    even = even + Splat<V>(row[d]) * Load<V>(a + d * lda);
    odd = odd + Splat<V>(row[d + 1]) * Load<V>(a + (d + 1) * lda);
  }
  if (d < hs) even = even + Splat<V>(row[d]) * Load<V>(a + d * lda);
  return even + odd;
}

// As BlockDot with kHs dims whose a-vectors are in registers (qv[d] = a[d·lda ..]).
template <typename V, int kHs>
CB_INLINE V BlockDotRegs(const V* qv, const float* row) {
  V even = Splat<V>(0.0f), odd = Splat<V>(0.0f);
#pragma GCC unroll 32
  for (int d = 0; d + 1 < kHs; d += 2) {
    even = even + Splat<V>(row[d]) * qv[d];
    odd = odd + Splat<V>(row[d + 1]) * qv[d + 1];
  }
  if (kHs % 2 == 1) even = even + Splat<V>(row[kHs - 1]) * qv[kHs - 1];
  return even + odd;
}

// kHs: the head size where known at compile time (its Q·Scale and dY vectors then stay in
// registers over a block's keys), else 0.
template <typename V, typename VC, int kHs>
CB_INLINE void CausalHead(const AttentionJob& job, int64_t task, const AttentionScratch& w) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  typedef typename Doubles<V>::Type DV;
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
  const auto lane = LaneIndex<V>();
  const float inf = HUGE_VALF;
  for (int64_t i0 = 0; i0 < T; i0 += W) {
    const int64_t nk = std::min(i0 + W, T);  // keys of the block's rows
    float* pt = w.ptile;  // [nk, W]: the block's P, keys × rows
    V m = Splat<V>(-inf);
    V qv[kHs > 0 ? kHs : 1];
#pragma GCC unroll 32
    for (int d = 0; d < kHs; ++d) qv[d] = Load<V>(w.qst + d * tp + i0);
    for (int64_t j = 0; j < nk; ++j) {
      const V s = kHs > 0 ? BlockDotRegs<V, kHs>(qv, k + j * rs)
                         : BlockDot<V>(w.qst + i0, tp, k + j * rs, hs);
      V z = s + Load<V>(bt + j * tp + i0);
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
    const int64_t rows = std::min(W, T - i0);
    if (!grad) {
      BlockCombine<V, false>(pt, W, v, rs, hs, i0, nk, 1.0f, w.tile);
      StoreTransposed<V>(w.tile, hs, rows, out + i0 * os, os);
      continue;
    }
    // dp_j = dy_i · v_j, c = Σ_j p_j·dp_j, ds_j = p_j·(dp_j − c), into a tile as P's
    float* st = w.stile;
    DV acc2[4] = {};
#pragma GCC unroll 32
    for (int d = 0; d < kHs; ++d) qv[d] = Load<V>(w.dyt + d * tp + i0);  // now dY's
    for (int64_t j = 0; j < nk; ++j) {
      const V dp = kHs > 0 ? BlockDotRegs<V, kHs>(qv, v + j * rs)
                          : BlockDot<V>(w.dyt + i0, tp, v + j * rs, hs);
      Store(st + j * W, dp);
      V pd = Load<V>(pt + j * W) * dp;
      if (j > i0) pd = lane >= static_cast<int>(j - i0) ? pd : Splat<V>(0.0f);
      acc2[j % 4] += __builtin_convertvector(pd, DV);
    }
    const V c = SumToFloat<V>(acc2);
    for (int64_t j = 0; j < nk; ++j) {
      Store(st + j * W, Load<V>(pt + j * W) * (Load<V>(st + j * W) - c));
    }
    BlockCombine<V, true>(st, W, k, rs, hs, i0, nk, job.scale, w.tile);  // dQ's rows
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
      Combine<VC, false>(p, 1, v, rs, hs, l, u, 1.0f, o);
      continue;
    }
    Combine<VC, true>(w.ds + i * ld, 1, k, rs, hs, l, u, job.scale, o);  // dQ's row
  }
  if (!grad) return;
  const int32_t* ilo = job.ilo + h * T;
  const int32_t* ihi = job.ihi + h * T;
  for (int64_t j = 0; j < T; ++j) {
    Combine<VC, true>(w.ds + j, ld, q, rs, hs, ilo[j], ihi[j], job.scale, out + j * os + C);
    Combine<VC, false>(w.p + j, ld, dy, C, hs, ilo[j], ihi[j], 1.0f, out + j * os + 2 * C);
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

// Per-thread scratch, kept between calls (ORT's pool threads live as long as the session).
struct ScratchBuffer {
  float* data = nullptr;
  size_t size = 0;
  ~ScratchBuffer() { std::free(data); }
  float* Get(size_t count) {
    if (count > size) {
      std::free(data);
      // 64-byte aligned, so that rows of a multiple of 16 floats start on a cache line
      data = static_cast<float*>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64));
      if (data == nullptr) std::abort();
      size = count;
    }
    return data;
  }
};

void RunAttentionTask(void* data, size_t task) {
  const AttentionJob& job = *static_cast<const AttentionJob*>(data);
  const int64_t T = job.T, hs = job.hs, ld = job.ld;
  const int64_t rows = job.dy != nullptr ? T : 1;  // P's rows (the forward keeps one)
  thread_local ScratchBuffer scratch;
  float* buf = scratch.Get(
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

// The key range of every query row of every head, and the query rows of every key. Ranges
// that do not grow with the row (both ends non-decreasing) would not make each key's rows one
// run: then every row computes every key (masked weights are exactly 0). `ranges` holds 4·H·T.
void AttentionRanges(const float* bias, int64_t H, int64_t T, int32_t* ranges) {
  const int64_t rows = H * T;
  int32_t* lo = ranges;
  int32_t* hi = ranges + rows;
  int32_t* ilo = ranges + 2 * rows;
  int32_t* ihi = ranges + 3 * rows;
  bool monotone = true;
  for (int64_t r = 0; r < rows; ++r) {
    const float* b = bias + r * T;
    int64_t first = 0, last = T - 1;
    while (first < T && !(b[first] >= kMaskedBias)) ++first;
    while (last >= 0 && !(b[last] >= kMaskedBias)) --last;
    if (first > last) first = 0, last = T - 1;  // every key masked: compute the row in full
    lo[r] = static_cast<int32_t>(first);
    hi[r] = static_cast<int32_t>(last);
    if (r % T != 0 && (lo[r] < lo[r - 1] || hi[r] < hi[r - 1])) monotone = false;
  }
  if (!monotone) {
    for (int64_t r = 0; r < rows; ++r) lo[r] = 0, hi[r] = static_cast<int32_t>(T - 1);
  }
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t j = 0; j < T; ++j) {
      int32_t i0 = static_cast<int32_t>(T), i1 = -1;
      for (int64_t i = 0; i < T; ++i) {
        if (lo[h * T + i] <= j && j <= hi[h * T + i]) {
          if (i0 > i) i0 = static_cast<int32_t>(i);
          i1 = static_cast<int32_t>(i);
        }
      }
      ilo[h * T + j] = i0;
      ihi[h * T + j] = i1;
    }
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
  AttentionRanges(job.bias, job.H, job.T, ranges);
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

// ---------------------------------------------------------------------------------------------
// LayerNormGrad(dY, X, Scale [C], Mean, InvStd) -> (dX, dScale [C], dBias [C]) over the last
// axis (C), with the forward node's statistics: per row, in float32 unless noted,
// x̂_j = (x_j − μ)·r, g_j = dY_j·γ_j, a = float(Σ_j g_j / C) and b = float(Σ_j g_j·x̂_j / C)
// (sums in double by position mod 4), dX_j = ((g_j − a) − x̂_j·b)·r. Rows are split whole over
// the pool in fixed blocks, as the row kernels above; each block adds up its rows' dY_j·x̂_j and
// dY_j per column in row order (float), and the blocks' sums are added in block order: dScale
// and dBias, with bits that do not depend on the thread count. (The definition's row sums are
// ORT's MatMul with a row of ones, whose order is its own.)

bool SameShape(const Shape& a, const Shape& b) {
  if (a.rank != b.rank) return false;
  for (size_t i = 0; i < a.rank; ++i) {
    if (a.dims[i] != b.dims[i]) return false;
  }
  return true;
}

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
// ColumnSums(X [R, C]) -> Y [1, C]: y_c = Σ_r x_rc in float32, row after row, as ONNX Runtime's
// ReduceSum over axis 0 adds them (the tests compare the bits). A task sums a block of columns;
// within it, kColumnVectors vectors of columns advance row by row as independent add chains.
//
// BiasGeluGrad(dY [..., M], Slope [..., M]) -> (dX = dY·Slope, dB [M] = Σ_rows dX): the same
// pass with each element first multiplied (float32, as Mul) and stored, so dX and dB have the
// bits of Mul and then ColumnSums.

constexpr int64_t kColumnVectors = 4;

struct ColumnJob {
  Blocks blocks;  // columns
  int64_t rows = 0;
  const float* x = nullptr;
  const float* s = nullptr;  // BiasGeluGrad: the factor of each element; else null
  float* prod = nullptr;     // BiasGeluGrad: x·s, [R, C]
  float* y = nullptr;
};

// Row r's columns [c, c + W) of x, or of x·s (then stored into prod).
template <typename V, bool kProduct>
CB_INLINE V ColumnTerm(const ColumnJob& job, int64_t at) {
  if constexpr (!kProduct) {
    return Load<V>(job.x + at);
  } else {
    const V v = Load<V>(job.x + at) * Load<V>(job.s + at);
    Store(job.prod + at, v);
    return v;
  }
}

template <typename V, bool kProduct>
CB_INLINE void ColumnBlockOf(const ColumnJob& job, int64_t c0, int64_t c1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t R = job.rows, C = job.blocks.count;
  int64_t c = c0;
  for (; c + kColumnVectors * W <= c1; c += kColumnVectors * W) {
    V acc[kColumnVectors];
    for (int u = 0; u < kColumnVectors; ++u) acc[u] = Splat<V>(0.0f);
    for (int64_t r = 0; r < R; ++r) {
      #pragma GCC unroll 4
      for (int u = 0; u < kColumnVectors; ++u) {
        acc[u] = acc[u] + ColumnTerm<V, kProduct>(job, r * C + c + u * W);
      }
    }
    for (int u = 0; u < kColumnVectors; ++u) Store(job.y + c + u * W, acc[u]);
  }
  for (; c + W <= c1; c += W) {
    V acc = Splat<V>(0.0f);
    for (int64_t r = 0; r < R; ++r) acc = acc + ColumnTerm<V, kProduct>(job, r * C + c);
    Store(job.y + c, acc);
  }
  for (; c < c1; ++c) {
    float acc = 0.0f;
    for (int64_t r = 0; r < R; ++r) {
      float v = job.x[r * C + c];
      if constexpr (kProduct) {
        v = v * job.s[r * C + c];
        job.prod[r * C + c] = v;
      }
      acc = acc + v;
    }
    job.y[c] = acc;
  }
}

template <typename V>
CB_INLINE void ColumnBlock(const ColumnJob& job, int64_t c0, int64_t c1) {
  if (job.s != nullptr) return ColumnBlockOf<V, true>(job, c0, c1);
  ColumnBlockOf<V, false>(job, c0, c1);
}

CB_RANGE_AT_EVERY_WIDTH(ColumnBlock, ColumnJob, ColumnBlock)

OrtStatus* ComputeColumnSums(OrtKernelContext* ctx, Simd simd) {
  Shape xs;
  ColumnJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "X", &xs, &job.x));
  if (xs.rank != 2) {
    return Error("Cannot run ColumnSums as X must have rank 2: current shape is " +
                 ShapeString(xs));
  }
  job.rows = xs.dims[0];
  Shape ys = xs;
  ys.dims[0] = 1;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, ys, &job.y));
  // 64 columns a block: a whole number of vectors at every width, and 1–4 blocks for the
  // transformer's biases (64 to 256 columns).
  job.blocks = {xs.dims[1], 64, simd};
  return RunBlocks<ColumnJob, ColumnBlockSse2, ColumnBlockAvx2, ColumnBlockAvx512>(ctx, &job);
}

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

// ---------------------------------------------------------------------------------------------
// Lanewise √ (correctly rounded, as IEEE requires; -fno-math-errno keeps it one instruction).
template <typename V>
CB_INLINE V Sqrt(const V& v) {
  V r;
  for (size_t l = 0; l < sizeof(V) / sizeof(float); ++l) r[l] = __builtin_sqrtf(v[l]);
  return r;
}

// AdamW(P, M, V, G, Mask, ClipScale, LrWd, StepSize, Bc2Sqrt, Beta1, OneMinusBeta1, Beta2,
// OneMinusBeta2, Eps) -> (P1, M1, V1) on flat vectors [N], the rest scalars; per element, each
// step one float32 operation in the order of the ONNX definition (onnx/functions.ts):
//   g = G·ClipScale; M1 = M·β1 + g·(1 − β1); V1 = V·β2 + (g·g)·(1 − β2);
//   P1 = P·(1 − Mask·LrWd) − (M1 / (√V1 / Bc2Sqrt + ε))·StepSize.
// IEEE operations are correctly rounded, so this gives ORT's bits for the definition (tested).

enum AdamWScalar { kClip, kLrWd, kStepSize, kBc2Sqrt, kBeta1, kOmb1, kBeta2, kOmb2, kEps };
constexpr int kAdamWScalars = 9;

struct AdamWJob {
  Blocks blocks;  // elements
  const float* p = nullptr;
  const float* m = nullptr;
  const float* v = nullptr;
  const float* g = nullptr;
  const float* mask = nullptr;
  float k[kAdamWScalars] = {};
  float* p1 = nullptr;
  float* m1 = nullptr;
  float* v1 = nullptr;
};

template <typename V>
CB_INLINE V AdamWLanes(const AdamWJob& j, const V& p, const V& m, const V& v, const V& g0,
                       const V& mask, V* m1, V* v1) {
  const V g = g0 * Splat<V>(j.k[kClip]);
  *m1 = m * Splat<V>(j.k[kBeta1]) + g * Splat<V>(j.k[kOmb1]);
  *v1 = v * Splat<V>(j.k[kBeta2]) + (g * g) * Splat<V>(j.k[kOmb2]);
  const V keep = Splat<V>(1.0f) - mask * Splat<V>(j.k[kLrWd]);
  const V denom = Sqrt(*v1) / Splat<V>(j.k[kBc2Sqrt]) + Splat<V>(j.k[kEps]);
  return p * keep - (*m1 / denom) * Splat<V>(j.k[kStepSize]);
}

template <typename V>
CB_INLINE void AdamWRange(const AdamWJob& j, int64_t i0, int64_t i1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  int64_t i = i0;
  V m1, v1;
  for (; i + W <= i1; i += W) {
    const V p1 = AdamWLanes<V>(j, Load<V>(j.p + i), Load<V>(j.m + i), Load<V>(j.v + i),
                               Load<V>(j.g + i), Load<V>(j.mask + i), &m1, &v1);
    Store(j.p1 + i, p1);
    Store(j.m1 + i, m1);
    Store(j.v1 + i, v1);
  }
  if (i < i1) {  // the tail through the same lane code; padding lanes are computed and dropped
    const int64_t n = i1 - i;
    const V p1 = AdamWLanes<V>(j, LoadTail<V>(j.p + i, n, 0.0f), LoadTail<V>(j.m + i, n, 0.0f),
                               LoadTail<V>(j.v + i, n, 0.0f), LoadTail<V>(j.g + i, n, 0.0f),
                               LoadTail<V>(j.mask + i, n, 0.0f), &m1, &v1);
    StoreTail(j.p1 + i, n, p1);
    StoreTail(j.m1 + i, n, m1);
    StoreTail(j.v1 + i, n, v1);
  }
}

CB_RANGE_AT_EVERY_WIDTH(AdamWRange, AdamWJob, AdamWRange)

OrtStatus* ComputeAdamW(OrtKernelContext* ctx, Simd simd) {
  static const char* const kVectorNames[] = {"P", "M", "V", "G", "Mask"};
  static const char* const kScalarNames[] = {"ClipScale", "LrWd", "StepSize",
                                             "Bc2Sqrt", "Beta1", "OneMinusBeta1",
                                             "Beta2", "OneMinusBeta2", "Eps"};
  AdamWJob job;
  const float** vectors[] = {&job.p, &job.m, &job.v, &job.g, &job.mask};
  Shape ps;
  for (size_t i = 0; i < 5; ++i) {
    Shape s;
    CB_RETURN_IF_ERROR(GetInputData(ctx, i, kVectorNames[i], &s, vectors[i]));
    if (s.rank != 1 || (i > 0 && s.dims[0] != ps.dims[0])) {
      return Error(std::string("Cannot run AdamW as ") + kVectorNames[i] +
                   " must be a vector as long as P: current shape is " + ShapeString(s));
    }
    if (i == 0) ps = s;
  }
  for (size_t i = 0; i < kAdamWScalars; ++i) {
    Shape s;
    const float* value = nullptr;
    CB_RETURN_IF_ERROR(GetInputData(ctx, 5 + i, kScalarNames[i], &s, &value));
    int64_t count = 1;
    for (size_t d = 0; d < s.rank; ++d) count *= s.dims[d];
    if (count != 1) {
      return Error(std::string("Cannot run AdamW as ") + kScalarNames[i] +
                   " must hold one value: current shape is " + ShapeString(s));
    }
    job.k[i] = *value;
  }
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, ps, &job.p1));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 1, ps, &job.m1));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 2, ps, &job.v1));
  job.blocks = {ps.dims[0], kBlockElems, simd};
  return RunBlocks<AdamWJob, AdamWRangeSse2, AdamWRangeAvx2, AdamWRangeAvx512>(ctx, &job);
}

// ---------------------------------------------------------------------------------------------
// Masked cross-entropy of a language model's logits:
//
//   MaskedCrossEntropy(Logits [..., V], Targets int32 [...], Mask [...]) -> Loss []
//   MaskedCrossEntropyGrad(dLoss [], Logits, Targets, Mask) -> dLogits [..., V]
//
// Per row r (a position): m = max_j x_j; e_j = exp(x_j − m) (Exp above, float32); z = Σ_j e_j
// (double, by class mod 4, as the row kernels sum by position); nll_r = log z − (x_t − m) in
// double (x_t − m as rounded for Exp), and 0 for a target outside [0, V), which matches no
// class in the ONNX definition either.
// Loss = float(Σ_r mask_r·nll_r / Σ_r mask_r), both sums in double in row order (each row's
// term is kept, and the sums run after the rows, so the thread count cannot change them).
// Gradient: k = float(dLoss / Σ_r mask_r), k_r = k·mask_r, p_j = e_j·float(1/z),
// dx_j = k_r·(p_j − [j = t]); all zeros for a row whose target is outside [0, V).

// log(z) per lane for z ≥ 1 in double: z = 2^k·f with f in [√½, √2) (exact, from the bits),
// log f = 2·atanh(s), s = (f − 1)/(f + 1), |s| < 0.172, by its series to s^19 (truncation below
// 1e-16 relative). IEEE operations only, so every machine gives the same bits. NaN stays NaN;
// the callers' z (a softmax's denominator, whose largest term is exp(0) = 1) is never below 1.
template <typename DV>
CB_INLINE DV LogAtLeastOne(const DV& z) {
  using DI = decltype(z < z);  // the int64 vector of the same width
  DI bits;
  std::memcpy(&bits, &z, sizeof(bits));
  DI k = ((bits >> 52) & 0x7ff) - 1023;
  const DI mantissa = (bits & 0x000fffffffffffffLL) | 0x3ff0000000000000LL;
  DV f;
  std::memcpy(&f, &mantissa, sizeof(f));  // in [1, 2)
  const DI high = f > 1.4142135623730951;
  f = high ? f * 0.5 : f;
  k = high ? k + 1 : k;
  const DV s = (f - 1.0) / (f + 1.0);
  const DV s2 = s * s;
  DV series = s2 * 0.0 + 1.0 / 19.0;
  for (int i = 17; i >= 1; i -= 2) series = series * s2 + 1.0 / i;
  const DV log = __builtin_convertvector(k, DV) * 0.69314718055994531 + 2.0 * s * series;
  return z == z ? log : z;
}

template <>
struct Doubles<V4> {
  typedef double Type __attribute__((vector_size(32)));
};

struct CrossEntropyJob {
  Blocks blocks;  // rows
  int64_t n = 0;  // classes, V
  const float* x = nullptr;
  const int32_t* t = nullptr;
  const float* mask = nullptr;
  double* nll = nullptr;  // forward: mask_r·nll_r per row
  float* dx = nullptr;    // gradient
  float k = 0.0f;         // gradient: float(dLoss / Σ mask)
};

// Rows [r0, r1) W at a time, one row per lane (V = 30 classes would not fill a vector along the
// row, and a row's horizontal max and sums would cost more than its arithmetic): the rows are
// transposed into a [class, lane] tile, and each lane takes the arithmetic above in its order
// (the double sums by class mod 4, as the row kernels sum by position mod 4). Lanes past r1
// compute on zeros and are not stored.
template <typename V>
CB_INLINE void CrossEntropyRows(const CrossEntropyJob& job, int64_t r0, int64_t r1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  using DV = typename Doubles<V>::Type;
  using VI = decltype(Splat<V>(0.0f) < Splat<V>(0.0f));
  const int64_t n = job.n;
  std::vector<float> tile(static_cast<size_t>(n * W));  // [class][lane]
  for (int64_t b = r0; b < r1; b += W) {
    const int64_t live = r1 - b < W ? r1 - b : W;
    for (int64_t l = 0; l < W; ++l) {
      const float* x = job.x + (b + l) * n;
      for (int64_t j = 0; j < n; ++j) tile[j * W + l] = l < live ? x[j] : 0.0f;
    }
    VI t;
    V valid;  // 1 where the target is a class, else 0
    for (int64_t l = 0; l < W; ++l) {
      t[l] = l < live ? job.t[b + l] : -1;
      valid[l] = t[l] >= 0 && t[l] < n ? 1.0f : 0.0f;
    }
    V m = Splat<V>(-HUGE_VALF);
    for (int64_t j = 0; j < n; ++j) {
      const V x = Load<V>(&tile[j * W]);
      m = x > m ? x : m;
    }
    V xt = Splat<V>(0.0f);  // x_t − m per lane, as Exp's argument was rounded
    auto term = [&](int64_t j) {
      const V d = Load<V>(&tile[j * W]) - m;
      xt = t == static_cast<int32_t>(j) ? d : xt;
      const V e = Exp(d);
      Store(&tile[j * W], e);
      return __builtin_convertvector(e, DV);
    };
    DV acc[4] = {};  // by class mod 4; unrolled so that the four stay in registers
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      acc[0] += term(j);
      acc[1] += term(j + 1);
      acc[2] += term(j + 2);
      acc[3] += term(j + 3);
    }
    for (int64_t c = 0; j < n; ++j, ++c) acc[c] += term(j);
    const DV z = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    if (job.dx == nullptr) {
      const DV nll = LogAtLeastOne(z) - __builtin_convertvector(xt, DV);
      for (int64_t l = 0; l < live; ++l) {
        job.nll[b + l] = valid[l] != 0.0f ? static_cast<double>(job.mask[b + l]) * nll[l] : 0.0;
      }
      continue;
    }
    const V inv = __builtin_convertvector(1.0 / z, V);
    V kr;
    for (int64_t l = 0; l < W; ++l) kr[l] = l < live ? job.k * job.mask[b + l] : 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      const V hit = t == static_cast<int32_t>(j) ? Splat<V>(1.0f) : Splat<V>(0.0f);
      const V d = (Load<V>(&tile[j * W]) * inv - hit) * kr;
      Store(&tile[j * W], valid != 0.0f ? d : Splat<V>(0.0f));
    }
    for (int64_t l = 0; l < live; ++l) {
      float* dx = job.dx + (b + l) * n;
      for (int64_t j = 0; j < n; ++j) dx[j] = tile[j * W + l];
    }
  }
}

CB_RANGE_AT_EVERY_WIDTH(CrossEntropyRows, CrossEntropyJob, CrossEntropyRows)

// Reads Logits, Targets and Mask (inputs `first` to first + 2) into a job; checks the shapes.
OrtStatus* ReadCrossEntropyInputs(OrtKernelContext* ctx, size_t first, const char* name,
                                  Simd simd, CrossEntropyJob* job, Shape* xs) {
  Shape ts, ms;
  const float* targets = nullptr;
  CB_RETURN_IF_ERROR(GetInputData(ctx, first, "Logits", xs, &job->x));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 1, "Targets", &ts, &targets));
  CB_RETURN_IF_ERROR(GetInputData(ctx, first + 2, "Mask", &ms, &job->mask));
  bool ok = xs->rank >= 1 && ts.rank + 1 == xs->rank && ms.rank == ts.rank;
  for (size_t i = 0; ok && i < ts.rank; ++i) {
    ok = ts.dims[i] == xs->dims[i] && ms.dims[i] == xs->dims[i];
  }
  if (!ok) {
    return Error(std::string("Cannot run ") + name + " as Targets " + ShapeString(ts) +
                 " and Mask " + ShapeString(ms) + " must be Logits' " + ShapeString(*xs) +
                 " without its last axis");
  }
  job->t = reinterpret_cast<const int32_t*>(targets);
  job->n = xs->dims[xs->rank - 1];
  job->blocks = {LeadingRows(*xs), job->n == 0 ? 1 : RowsPerBlock(job->n), simd};
  return nullptr;
}

double MaskSum(const CrossEntropyJob& job) {
  double sum = 0.0;
  for (int64_t r = 0; r < job.blocks.count; ++r) sum += job.mask[r];
  return sum;
}

OrtStatus* ComputeCrossEntropy(OrtKernelContext* ctx, Simd simd) {
  CrossEntropyJob job;
  Shape xs;
  CB_RETURN_IF_ERROR(ReadCrossEntropyInputs(ctx, 0, "MaskedCrossEntropy", simd, &job, &xs));
  float* loss = nullptr;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, Shape{}, &loss));
  std::vector<double> terms(static_cast<size_t>(job.blocks.count));
  job.nll = terms.data();
  if (job.n > 0) {
    CB_RETURN_IF_ERROR((RunBlocks<CrossEntropyJob, CrossEntropyRowsSse2, CrossEntropyRowsAvx2,
                                  CrossEntropyRowsAvx512>(ctx, &job)));
  }
  double total = 0.0;
  for (double term : terms) total += term;
  *loss = static_cast<float>(total / MaskSum(job));
  return nullptr;
}

OrtStatus* ComputeCrossEntropyGrad(OrtKernelContext* ctx, Simd simd) {
  Shape ds;
  const float* dloss = nullptr;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "dLoss", &ds, &dloss));
  if (ds.rank != 0) {
    return Error("Cannot run MaskedCrossEntropyGrad as dLoss must be a scalar: current shape is " +
                 ShapeString(ds));
  }
  CrossEntropyJob job;
  Shape xs;
  CB_RETURN_IF_ERROR(
      ReadCrossEntropyInputs(ctx, 1, "MaskedCrossEntropyGrad", simd, &job, &xs));
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, xs, &job.dx));
  job.k = static_cast<float>(static_cast<double>(*dloss) / MaskSum(job));
  if (job.n == 0) return nullptr;
  return RunBlocks<CrossEntropyJob, CrossEntropyRowsSse2, CrossEntropyRowsAvx2,
                   CrossEntropyRowsAvx512>(ctx, &job);
}

// ---------------------------------------------------------------------------------------------
// BiasResidual(X [..., C], Y [..., C], B [C]) -> Z = X + (Y + B): a residual connection around a
// linear layer. Two float32 additions per element in the definition's order, so the bits are
// those of its two Adds.

struct BiasResidualJob {
  Blocks blocks;  // rows
  int64_t n = 0;  // C
  const float* x = nullptr;
  const float* y = nullptr;
  const float* b = nullptr;
  float* z = nullptr;
};

template <typename V>
CB_INLINE void BiasResidualRows(const BiasResidualJob& job, int64_t r0, int64_t r1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t n = job.n;
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = job.x + r * n;
    const float* y = job.y + r * n;
    float* z = job.z + r * n;
    int64_t j = 0;
    for (; j + W <= n; j += W) {
      Store(z + j, Load<V>(x + j) + (Load<V>(y + j) + Load<V>(job.b + j)));
    }
    for (; j < n; ++j) z[j] = x[j] + (y[j] + job.b[j]);
  }
}

CB_RANGE_AT_EVERY_WIDTH(BiasResidualRows, BiasResidualJob, BiasResidualRows)

OrtStatus* ComputeBiasResidual(OrtKernelContext* ctx, Simd simd) {
  Shape xs, ys, bs;
  BiasResidualJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "X", &xs, &job.x));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 1, "Y", &ys, &job.y));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 2, "B", &bs, &job.b));
  bool ok = xs.rank >= 1 && ys.rank == xs.rank && bs.rank == 1 &&
            bs.dims[0] == xs.dims[xs.rank - 1];
  for (size_t i = 0; ok && i < xs.rank; ++i) ok = ys.dims[i] == xs.dims[i];
  if (!ok) {
    return Error("Cannot run BiasResidual as Y " + ShapeString(ys) + " must be X's shape " +
                 ShapeString(xs) + " and B " + ShapeString(bs) + " its last dimension");
  }
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, xs, &job.z));
  job.n = xs.dims[xs.rank - 1];
  if (job.n == 0) return nullptr;
  job.blocks = {LeadingRows(xs), RowsPerBlock(job.n), simd};
  return RunBlocks<BiasResidualJob, BiasResidualRowsSse2, BiasResidualRowsAvx2,
                   BiasResidualRowsAvx512>(ctx, &job);
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
// SumOfSquares(G [N]) -> S []: Σ g² (float products, as Mul rounds them, summed in double by
// position mod 4 as the row kernels sum), rounded to float once. One pass on one thread: the
// train step's ~1e5 gradients take a few tens of µs, less than the pool's hand-off would save.

struct SquaresJob {
  Blocks blocks;  // one block: the whole vector
  const float* g = nullptr;
  double* sum = nullptr;
};

template <typename V>
CB_INLINE void SquaresRange(const SquaresJob& job, int64_t i0, int64_t i1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  D4 acc = {};
  int64_t j = i0;
  for (; j + W <= i1; j += W) {
    const V v = Load<V>(job.g + j);
    Accumulate(acc, v * v);
  }
  if (j < i1) {
    const V v = LoadTail<V>(job.g + j, i1 - j, 0.0f);
    Accumulate(acc, v * v);
  }
  *job.sum = SumLanes(acc);
}

CB_RANGE_AT_EVERY_WIDTH(SquaresRange, SquaresJob, SquaresRange)

OrtStatus* ComputeSumOfSquares(OrtKernelContext* ctx, Simd simd) {
  Shape gs;
  SquaresJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "G", &gs, &job.g));
  if (gs.rank != 1) {
    return Error("Cannot run SumOfSquares as G must be a vector: current shape is " +
                 ShapeString(gs));
  }
  float* s = nullptr;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, Shape{}, &s));
  double sum = 0.0;
  job.sum = &sum;
  job.blocks = {gs.dims[0], gs.dims[0] > 0 ? gs.dims[0] : 1, simd};
  CB_RETURN_IF_ERROR(
      (RunBlocks<SquaresJob, SquaresRangeSse2, SquaresRangeAvx2, SquaresRangeAvx512>(ctx, &job)));
  *s = static_cast<float>(sum);
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// MatMulTransA(A [K, M], B [K, N]) -> C = Aᵀ·B [M, N]: a linear layer's weight gradient,
// xᵀ·dY summed over the batch's rows. C[m, n] = Σ_k A[k, m]·B[k, n], summed in k order from 0
// with one fused multiply-add per term: the one kernel here that uses FMA, as a GEMM without
// it runs at two thirds of the speed (77 against 115 GFLOP/s on one Zen 4 core, in a harness). An FMA is
// correctly rounded wherever it runs (AVX2/AVX-512 FMA instructions, libm's fmaf on the SSE2
// path), so each element's bits are still the same at every vector width, tile and thread
// count. ORT's FusedMatMul with transA copies Aᵀ into its packed layout first (in the train step
// its inputs are the forward pass's activations, long out of cache); here both operands
// are read in place: row k of A gives the broadcasts and row k of B the vectors of an outer
// product.
//
// C is cut into blocks of rows (a task each); a block runs over K in stretches of kTransAK rows,
// which stay in L2, and over its columns in tiles of MR rows × 2 vectors held in registers for a
// stretch. Columns go in vectors from 0, the last one starting at N − W when W does not divide N
// (its overlap with the previous vector is computed twice, with the same bits, in the same
// tile).

// a·b + c, rounded once. (GCC vectorises the lane loop into one FMA instruction in the AVX2 and
// AVX-512 paths, built with FMA enabled; the SSE2 path calls libm's fmaf.)
template <typename V>
CB_INLINE V Fma(const V& a, const V& b, const V& c) {
  V r;
  for (size_t l = 0; l < sizeof(V) / sizeof(float); ++l) r[l] = __builtin_fmaf(a[l], b[l], c[l]);
  return r;
}

constexpr int64_t kTransAK = 256;

struct TransAJob {
  Blocks blocks;  // rows of C
  int64_t K = 0, M = 0, N = 0;
  const float* a = nullptr;  // [K, M]
  const float* b = nullptr;  // [K, N]
  float* c = nullptr;        // [M, N]
};

// Rows [m0, m0 + MR) × the NV vectors at `cols` of C over k in [k0, k1), continuing the sums
// in C (or from 0 when k0 = 0).
template <typename V, int MR, int NV>
CB_INLINE void TransATile(const TransAJob& job, int64_t m0, const int64_t* cols, int64_t k0,
                          int64_t k1) {
  V acc[MR][NV];
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    #pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) {
      acc[i][j] = k0 == 0 ? Splat<V>(0.0f) : Load<V>(job.c + (m0 + i) * job.N + cols[j]);
    }
  }
  const float* a = job.a + m0;
  for (int64_t k = k0; k < k1; ++k) {
    const float* ak = a + k * job.M;
    const float* bk = job.b + k * job.N;
    V bv[NV];
    #pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) bv[j] = Load<V>(bk + cols[j]);
    #pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V av = Splat<V>(ak[i]);
      #pragma GCC unroll 2
      for (int j = 0; j < NV; ++j) acc[i][j] = Fma(av, bv[j], acc[i][j]);
    }
  }
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    #pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) Store(job.c + (m0 + i) * job.N + cols[j], acc[i][j]);
  }
}

// The first column of vector j: j·W, or N − W for a last vector that would pass the end.
template <typename V>
CB_INLINE int64_t TransAColumn(const TransAJob& job, int64_t j) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  return j * W + W <= job.N ? j * W : job.N - W;
}

// Rows [m0, m0 + MR) over every column vector for k in [k0, k1).
template <typename V, int MR>
CB_INLINE void TransARows(const TransAJob& job, int64_t m0, int64_t k0, int64_t k1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  const int64_t nv = (job.N + W - 1) / W;
  int64_t j = 0;
  // An odd vector out goes first, so that a last vector overlapping its predecessor shares its
  // tile: both load C before either stores, and store the same bits.
  if (nv % 2 == 1) {
    const int64_t cols[1] = {TransAColumn<V>(job, j++)};
    TransATile<V, MR, 1>(job, m0, cols, k0, k1);
  }
  for (; j < nv; j += 2) {
    const int64_t cols[2] = {TransAColumn<V>(job, j), TransAColumn<V>(job, j + 1)};
    TransATile<V, MR, 2>(job, m0, cols, k0, k1);
  }
}

// Rows up to kMaxRows at a time (12 fit AVX-512's 32 registers with 2 vectors each; 6 the 16 of
// AVX2 and SSE2), the last pass as many as remain.
template <typename V>
CB_INLINE void TransAPass(const TransAJob& job, int64_t m0, int64_t rows, int64_t k0,
                          int64_t k1) {
  switch (rows) {
#define CB_TRANSA_ROWS(R) \
  case R:                 \
    return TransARows<V, R>(job, m0, k0, k1);
    CB_TRANSA_ROWS(1)
    CB_TRANSA_ROWS(2)
    CB_TRANSA_ROWS(3)
    CB_TRANSA_ROWS(4)
    CB_TRANSA_ROWS(5)
    CB_TRANSA_ROWS(6)
    CB_TRANSA_ROWS(7)
    CB_TRANSA_ROWS(8)
    CB_TRANSA_ROWS(9)
    CB_TRANSA_ROWS(10)
    CB_TRANSA_ROWS(11)
    CB_TRANSA_ROWS(12)
#undef CB_TRANSA_ROWS
  }
}

template <typename V>
CB_INLINE void TransABlock(const TransAJob& job, int64_t m0, int64_t m1) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  constexpr int64_t kMaxRows = W == 16 ? 12 : 6;
  const int64_t N = job.N;
  if (N < W) {  // narrower than one vector: the same sums, one element at a time
    for (int64_t m = m0; m < m1; ++m) {
      for (int64_t n = 0; n < N; ++n) {
        float acc = 0.0f;
        for (int64_t k = 0; k < job.K; ++k) {
          acc = __builtin_fmaf(job.a[k * job.M + m], job.b[k * N + n], acc);
        }
        job.c[m * N + n] = acc;
      }
    }
    return;
  }
  if (job.K == 0) {
    for (int64_t i = m0 * N; i < m1 * N; ++i) job.c[i] = 0.0f;
    return;
  }
  for (int64_t k0 = 0; k0 < job.K; k0 += kTransAK) {
    const int64_t k1 = std::min(k0 + kTransAK, job.K);
    for (int64_t m = m0; m < m1; m += kMaxRows) {
      TransAPass<V>(job, m, std::min(kMaxRows, m1 - m), k0, k1);
    }
  }
}

// As CB_RANGE_AT_EVERY_WIDTH, with FMA instructions enabled in the AVX2 and AVX-512 paths.
void TransABlockSse2(const TransAJob& job, int64_t i0, int64_t i1) { TransABlock<V4>(job, i0, i1); }
__attribute__((target("avx2,fma"))) void TransABlockAvx2(const TransAJob& job, int64_t i0,
                                                         int64_t i1) {
  TransABlock<V8>(job, i0, i1);
}
__attribute__((target("avx512f,fma"))) void TransABlockAvx512(const TransAJob& job, int64_t i0,
                                                              int64_t i1) {
  TransABlock<V16>(job, i0, i1);
}

OrtStatus* ComputeMatMulTransA(OrtKernelContext* ctx, Simd simd) {
  Shape as, bs;
  TransAJob job;
  CB_RETURN_IF_ERROR(GetInputData(ctx, 0, "A", &as, &job.a));
  CB_RETURN_IF_ERROR(GetInputData(ctx, 1, "B", &bs, &job.b));
  if (as.rank != 2 || bs.rank != 2 || as.dims[0] != bs.dims[0]) {
    return Error("Cannot run MatMulTransA as A [K, M] and B [K, N] must be matrices with as " +
                 std::string("many rows: current A ") + ShapeString(as) + ", B " +
                 ShapeString(bs));
  }
  job.K = as.dims[0];
  job.M = as.dims[1];
  job.N = bs.dims[1];
  Shape cs;
  cs.rank = 2;
  cs.dims[0] = job.M;
  cs.dims[1] = job.N;
  CB_RETURN_IF_ERROR(MakeOutputAt(ctx, 0, cs, &job.c));
  // Blocks of 12 rows (one AVX-512 tile high); 8 for narrow C, so that 2 threads split 64 rows
  // evenly. The AVX2 path needs FMA too (every AVX2 CPU since 2013 has it; CreateKernelV2 has
  // initialised the CPU model).
  const Simd width = simd == kAvx2 && !__builtin_cpu_supports("fma") ? kSse2 : simd;
  job.blocks = {job.M, job.M >= 96 ? 12 : 8, width};
  return RunBlocks<TransAJob, TransABlockSse2, TransABlockAvx2, TransABlockAvx512>(ctx, &job);
}

// ---------------------------------------------------------------------------------------------
// OrtCustomOp plumbing. A kernel is just the op code; ORT passes it back to Compute.

struct OpDef {
  OrtCustomOp op;  // first member, so an OrtCustomOp* is an OpDef*
  const char* name;
  int code;
  size_t inputs;
  size_t outputs;
  uint32_t int32_inputs = 0;  // bit i set: input i is int32, not float
};

const OpDef* Def(const OrtCustomOp* op) { return reinterpret_cast<const OpDef*>(op); }

const char* GetName(const OrtCustomOp* op) { return Def(op)->name; }
const char* GetExecutionProviderType(const OrtCustomOp*) { return nullptr; }  // CPU
int GetType(const OrtCustomOp*, size_t) { return kElementFloat; }
int GetInputType(const OrtCustomOp* op, size_t i) {
  return (Def(op)->int32_inputs >> i) & 1u ? kElementInt32 : kElementFloat;
}
size_t GetInputTypeCount(const OrtCustomOp* op) { return Def(op)->inputs; }
size_t GetOutputTypeCount(const OrtCustomOp* op) { return Def(op)->outputs; }
int GetCharacteristic(const OrtCustomOp*, size_t) { return kRequired; }
int GetInputMemoryType(const OrtCustomOp*, size_t) { return kMemTypeDefault; }
int GetVariadicMinArity(const OrtCustomOp*) { return 1; }
int GetVariadicHomogeneity(const OrtCustomOp*) { return 1; }

// A kernel: its op and the vector width it runs at, fixed when ORT creates it: the widest the
// CPU (and OS) has, AVX-512F, AVX2 or SSE2, capped by CLAIMBENCH_NATIVE_SIMD=sse2 or avx2 (the
// tests use it to compare the paths, which compute the same bits).
struct Kernel {
  const OpDef* def;
  Simd simd;
};

OrtStatus* CreateKernelV2(const OrtCustomOp* op, const OrtApi*, const OrtKernelInfo*,
                          void** kernel) {
  __builtin_cpu_init();
  const char* cap = std::getenv("CLAIMBENCH_NATIVE_SIMD");
  Simd simd = __builtin_cpu_supports("avx512f") ? kAvx512
              : __builtin_cpu_supports("avx2")  ? kAvx2
                                                : kSse2;
  if (cap != nullptr && std::strcmp(cap, "sse2") == 0) simd = kSse2;
  if (cap != nullptr && std::strcmp(cap, "avx2") == 0 && simd > kAvx2) simd = kAvx2;
  *kernel = new Kernel{Def(op), simd};
  return nullptr;
}

void KernelDestroy(void* kernel) { delete static_cast<Kernel*>(kernel); }

OrtStatus* KernelComputeV2(void* kernel, OrtKernelContext* ctx) {
  const Kernel& k = *static_cast<const Kernel*>(kernel);
  switch (k.def->code) {
    case 0:
      return ComputeBiasSoftmax(ctx, k.simd);
    case 1:
      return ComputeSameShape(ctx, 1, k.def->name, k.simd);
    case 2:
      return ComputeSameShape(ctx, 2, k.def->name, k.simd);
    case 5:
      return ComputeLayerNormGrad(ctx, k.simd);
    case 6:
      return ComputeColumnSums(ctx, k.simd);
    case 7:
      return ComputeAdamW(ctx, k.simd);
    case 8:
      return ComputeRowLayerNorm(ctx, k.simd);
    case 9:
      return ComputeCrossEntropy(ctx, k.simd);
    case 10:
      return ComputeCrossEntropyGrad(ctx, k.simd);
    case 11:
      return ComputeBiasResidual(ctx, k.simd);
    case 12:
      return ComputeBiasGelu(ctx, k.simd);
    case 13:
      return ComputeSumOfSquares(ctx, k.simd);
    case 14:
      return ComputeBiasGeluGrad(ctx, k.simd);
    case 15:
      return ComputeMatMulTransA(ctx, k.simd);
    default:
      return ComputeAttention(ctx, k.def->code == 4, k.simd);
  }
}

constexpr OrtCustomOp MakeOp() {
  return OrtCustomOp{
      kCustomOpVersion,
      nullptr,  // CreateKernel: CreateKernelV2 is used from version 16
      GetName,
      GetExecutionProviderType,
      GetInputType,
      GetInputTypeCount,
      GetType,
      GetOutputTypeCount,
      nullptr,  // KernelCompute: KernelComputeV2 is used from version 16
      KernelDestroy,
      GetCharacteristic,
      GetCharacteristic,
      GetInputMemoryType,
      GetVariadicMinArity,
      GetVariadicHomogeneity,
      GetVariadicMinArity,
      GetVariadicHomogeneity,
      CreateKernelV2,
      KernelComputeV2,
      nullptr,  // InferOutputShapeFn: not read at version 16; ORT propagates input 0's type
      nullptr,
      nullptr,
      nullptr,
      nullptr,
      nullptr,
      nullptr,
  };
}

const OpDef kOps[] = {
    {MakeOp(), "BiasSoftmax", 0, 2, 1},
    {MakeOp(), "SoftmaxGrad", 1, 2, 1},
    {MakeOp(), "GeluGrad", 2, 2, 1},
    {MakeOp(), "BiasAttention", 3, 3, 1},
    {MakeOp(), "BiasAttentionGrad", 4, 4, 1},
    {MakeOp(), "LayerNormGrad", 5, 5, 3},
    {MakeOp(), "ColumnSums", 6, 1, 1},
    {MakeOp(), "AdamW", 7, 14, 3},
    {MakeOp(), "RowLayerNorm", 8, 3, 3},
    {MakeOp(), "MaskedCrossEntropy", 9, 3, 1, 0b010},
    {MakeOp(), "MaskedCrossEntropyGrad", 10, 4, 1, 0b0100},
    {MakeOp(), "BiasResidual", 11, 3, 1},
    {MakeOp(), "BiasGelu", 12, 2, 2},
    {MakeOp(), "SumOfSquares", 13, 1, 1},
    {MakeOp(), "BiasGeluGrad", 14, 2, 2},
    {MakeOp(), "MatMulTransA", 15, 2, 1},
};

constexpr const char* kDomain = "ai.claimbench";

}  // namespace

// Entry point for OrtApi::RegisterCustomOpsLibrary_V2. The domain object stays alive for as long
// as sessions may use it: ORT does not take ownership, and it is a few hundred bytes per
// registration, so it is deliberately never released.
extern "C" __attribute__((visibility("default"))) OrtStatus* RegisterCustomOps(
    OrtSessionOptions* options, const OrtApiBase* base) {
  const OrtApi* api = base->GetApi(kApiVersion);
  if (api == nullptr) {
    // Entry 0 (CreateStatus) exists at every version: report which runtime we got.
    const OrtApi* any = base->GetApi(1);
    if (any == nullptr) return nullptr;
    Load(g_api.CreateStatus, any, 0);
    const std::string msg =
        std::string("Cannot register claimbench ops as they need ONNX Runtime API version 18 or ") +
        "newer: current runtime is " + base->GetVersionString();
    return g_api.CreateStatus(kOrtFail, msg.c_str());
  }
  g_api = LoadApi(api);
  OrtCustomOpDomain* domain = nullptr;
  CB_RETURN_IF_ERROR(g_api.CreateCustomOpDomain(kDomain, &domain));
  for (const OpDef& def : kOps) CB_RETURN_IF_ERROR(g_api.CustomOpDomain_Add(domain, &def.op));
  return g_api.AddCustomOpDomain(options, domain);
}
