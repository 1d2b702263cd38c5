// claimbench's native custom ops for ONNX Runtime (CPU, float32), domain "ai.claimbench":
//
//   BiasSoftmax(X [..., T, S], B) -> Y = softmax(X + B) over the last axis. B's shape is a
//     suffix of X's where every dimension equals X's or is 1, and its last dimension equals S
//     (e.g. X [batch, H, T, S] with B [H, T, S] or [1, T, S]). B may hold -inf (causal masks).
//     A row whose every entry of X + B is -inf has no defined softmax; it yields all zeros (not
//     NaN), so that its SoftmaxGrad is zero too. NaN in a row gives NaN in that row.
//   SoftmaxGrad(dY, Y) -> dX = Y * (dY - rowsum(dY * Y)) over the last axis.
//   GeluGrad(dY, X) -> dX = dY * (Phi(x) + x * phi(x)), the derivative of the exact (erf) GELU:
//     Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
//
// Precision: float32 arithmetic as the standard-op compositions do it (X + B is rounded before
// the softmax, dY − Σ before the product), with row sums in double; exp and erfc within about
// 1 ulp. Against a float64 reference the tests measured up to 5.2e-7 relative error in Y (X + B
// rounded), and up to 1.8e-7 of the terms' scale in the gradients.
//
// Determinism: rows are partitioned whole over ORT's intra-op thread pool and each row is summed
// in a fixed order, so results do not depend on the thread count. exp and erfc are our own
// (below) rather than libm's, whose x86-64 builds pick FMA variants by CPU at run time. With
// -ffp-contract=off and no -march, the baseline (SSE2) code and the AVX2 code chosen at run time
// apply the same IEEE operations in the same order, so every x86-64 machine computes the same
// bits (the tests compare the two paths).
//
// Build: g++ -O2 -fPIC -shared -std=c++17 -ffp-contract=off (see native/build.ts). Load with
// OrtApi::RegisterCustomOpsLibrary_V2, which calls RegisterCustomOps below.
//
// ABI: we do not include onnxruntime_c_api.h. The few declarations below were written from the
// facts in microsoft/onnxruntime include/onnxruntime/core/session/onnxruntime_c_api.h (the
// order of OrtApi's entries, which is append-only, and the layout of OrtCustomOp) and
// onnxruntime/core/session/custom_ops.cc (how OrtCustomOp::version gates which members ORT
// reads, and what KernelContext_ParallelFor does).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

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
typedef double D4 __attribute__((vector_size(32)));  // row sums, by element position mod 4

#define CB_INLINE inline __attribute__((always_inline))

// The 8-lane instantiations are always inlined into the AVX2 entry point, so no 32-byte vector
// crosses a call boundary compiled without AVX: GCC's ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

template <typename V>
CB_INLINE V Splat(float v) {
  V r = {};
  return r + v;
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

// GELU'(x) = Phi(x) + x·phi(x); z = x/√2 so that e^(−z²) = e^(−x²/2) serves both.
template <typename V>
CB_INLINE V GeluDerivative(const V& x) {
  const V zero = Splat<V>(0.0f);
  const V z = x * 0.707106781f;
  const V a = z < zero ? -z : z;
  const V t = 1.0f / (1.0f + 0.5f * a);
  V q = Splat<V>(kErfcQ[10]);
  for (int i = 9; i >= 0; --i) q = q * t + kErfcQ[i];
  const V e = Exp(-(z * z));
  const V erfc_a = t * q * e;
  const V cdf = z >= zero ? 1.0f - 0.5f * erfc_a : 0.5f * erfc_a;
  const V pdf = e * 0.398942280f;  // 1/√(2π)
  // At x = ±inf, pdf is 0 and x·pdf would be NaN: the limit is 0.
  return cdf + (pdf == zero ? zero : x * pdf);
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

// One entry point per (op, width): 0 BiasSoftmax, 1 SoftmaxGrad, 2 GeluGrad.
void RowSse2(int op, const float* a, const float* b, float* out, int64_t n) {
  if (op == 0) BiasSoftmaxRow<V4>(a, b, out, n);
  else if (op == 1) SoftmaxGradRow<V4>(a, b, out, n);
  else GeluGradRow<V4>(a, b, out, n);
}

__attribute__((target("avx2"))) void RowAvx2(int op, const float* a, const float* b, float* out,
                                             int64_t n) {
  if (op == 0) BiasSoftmaxRow<V8>(a, b, out, n);
  else if (op == 1) SoftmaxGradRow<V8>(a, b, out, n);
  else GeluGradRow<V8>(a, b, out, n);
}

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

struct RowJob {
  int64_t rows = 0;
  int64_t n = 0;            // row length (last axis)
  int64_t rows_per_block = 1;
  const float* a = nullptr;  // first input
  const float* b = nullptr;  // second input (BiasSoftmax: the bias)
  float* out = nullptr;
  // BiasSoftmax: row r of X reads bias row Σ idx_d · bias_row_stride[d] over X's leading dims.
  size_t lead_rank = 0;
  int64_t lead_dims[16] = {};
  int64_t bias_row_stride[16] = {};
  int op = 0;  // 0 BiasSoftmax, 1 SoftmaxGrad, 2 GeluGrad
  bool avx2 = false;
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

void RunBlock(void* data, size_t block) {
  const RowJob& job = *static_cast<const RowJob*>(data);
  const int64_t r0 = static_cast<int64_t>(block) * job.rows_per_block;
  const int64_t r1 = r0 + job.rows_per_block < job.rows ? r0 + job.rows_per_block : job.rows;
  BiasCursor bias(job, job.op == 0 ? r0 : 0);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = r * job.n;
    const float* b = job.b + (job.op == 0 ? bias.offset * job.n : o);
    if (job.avx2) {
      RowAvx2(job.op, job.a + o, b, job.out + o, job.n);
    } else {
      RowSse2(job.op, job.a + o, b, job.out + o, job.n);
    }
    if (job.op == 0) bias.Next(job);
  }
}

OrtStatus* RunRows(const OrtKernelContext* ctx, RowJob* job) {
  if (job->rows == 0 || job->n == 0) return nullptr;
  job->rows_per_block = job->n >= kBlockElems ? 1 : kBlockElems / job->n;
  const int64_t blocks = (job->rows + job->rows_per_block - 1) / job->rows_per_block;
  if (blocks == 1 || g_api.KernelContext_ParallelFor == nullptr) {
    for (int64_t i = 0; i < blocks; ++i) RunBlock(job, static_cast<size_t>(i));
    return nullptr;
  }
  // num_batch 0: ORT's TrySimpleParallelFor, one call per block; without a pool, in order.
  return g_api.KernelContext_ParallelFor(ctx, RunBlock, static_cast<size_t>(blocks), 0, job);
}

struct Io {
  const float* in0 = nullptr;
  const float* in1 = nullptr;
  Shape s0;
  Shape s1;
};

OrtStatus* ReadInputs(OrtKernelContext* ctx, Io* io) {
  const OrtValue* v0 = nullptr;
  const OrtValue* v1 = nullptr;
  CB_RETURN_IF_ERROR(g_api.KernelContext_GetInput(ctx, 0, &v0));
  CB_RETURN_IF_ERROR(g_api.KernelContext_GetInput(ctx, 1, &v1));
  if (v0 == nullptr || v1 == nullptr) {
    return Error("Cannot run claimbench op as an input is missing");
  }
  CB_RETURN_IF_ERROR(GetShape(v0, &io->s0, "input 0"));
  CB_RETURN_IF_ERROR(GetShape(v1, &io->s1, "input 1"));
  void* p0 = nullptr;
  void* p1 = nullptr;
  // Inputs are only read; the API has one accessor for both directions.
  CB_RETURN_IF_ERROR(g_api.GetTensorMutableData(const_cast<OrtValue*>(v0), &p0));
  CB_RETURN_IF_ERROR(g_api.GetTensorMutableData(const_cast<OrtValue*>(v1), &p1));
  io->in0 = static_cast<const float*>(p0);
  io->in1 = static_cast<const float*>(p1);
  return nullptr;
}

OrtStatus* MakeOutput(OrtKernelContext* ctx, const Shape& shape, float** out) {
  OrtValue* v = nullptr;
  CB_RETURN_IF_ERROR(g_api.KernelContext_GetOutput(ctx, 0, shape.dims, shape.rank, &v));
  void* p = nullptr;
  CB_RETURN_IF_ERROR(g_api.GetTensorMutableData(v, &p));
  *out = static_cast<float*>(p);
  return nullptr;
}

void SplitRows(const Shape& s, RowJob* job) {
  job->n = s.rank == 0 ? 1 : s.dims[s.rank - 1];
  job->rows = 1;
  for (size_t i = 0; i + 1 < s.rank; ++i) job->rows *= s.dims[i];
}

OrtStatus* ComputeBiasSoftmax(OrtKernelContext* ctx, bool avx2) {
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
  job.avx2 = avx2;
  SplitRows(xs, &job);
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
  CB_RETURN_IF_ERROR(MakeOutput(ctx, xs, &job.out));
  return RunRows(ctx, &job);
}

OrtStatus* ComputeSameShape(OrtKernelContext* ctx, int op, const char* name, bool avx2) {
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
  job.avx2 = avx2;
  SplitRows(io.s0, &job);
  job.a = io.in0;
  job.b = io.in1;
  CB_RETURN_IF_ERROR(MakeOutput(ctx, io.s0, &job.out));
  return RunRows(ctx, &job);
}

// ---------------------------------------------------------------------------------------------
// OrtCustomOp plumbing. A kernel is just the op code; ORT passes it back to Compute.

struct OpDef {
  OrtCustomOp op;  // first member, so an OrtCustomOp* is an OpDef*
  const char* name;
  int code;
};

const OpDef* Def(const OrtCustomOp* op) { return reinterpret_cast<const OpDef*>(op); }

const char* GetName(const OrtCustomOp* op) { return Def(op)->name; }
const char* GetExecutionProviderType(const OrtCustomOp*) { return nullptr; }  // CPU
int GetType(const OrtCustomOp*, size_t) { return kElementFloat; }
size_t GetInputTypeCount(const OrtCustomOp*) { return 2; }
size_t GetOutputTypeCount(const OrtCustomOp*) { return 1; }
int GetCharacteristic(const OrtCustomOp*, size_t) { return kRequired; }
int GetInputMemoryType(const OrtCustomOp*, size_t) { return kMemTypeDefault; }
int GetVariadicMinArity(const OrtCustomOp*) { return 1; }
int GetVariadicHomogeneity(const OrtCustomOp*) { return 1; }

// A kernel: its op and the vector width it runs at, fixed when ORT creates it. AVX2 where the
// CPU (and OS) has it, unless CLAIMBENCH_NATIVE_SIMD=sse2 (tests use it to compare the paths).
struct Kernel {
  const OpDef* def;
  bool avx2;
};

OrtStatus* CreateKernelV2(const OrtCustomOp* op, const OrtApi*, const OrtKernelInfo*,
                          void** kernel) {
  __builtin_cpu_init();
  const char* simd = std::getenv("CLAIMBENCH_NATIVE_SIMD");
  const bool sse2 = simd != nullptr && std::strcmp(simd, "sse2") == 0;
  *kernel = new Kernel{Def(op), !sse2 && __builtin_cpu_supports("avx2")};
  return nullptr;
}

void KernelDestroy(void* kernel) { delete static_cast<Kernel*>(kernel); }

OrtStatus* KernelComputeV2(void* kernel, OrtKernelContext* ctx) {
  const Kernel& k = *static_cast<const Kernel*>(kernel);
  switch (k.def->code) {
    case 0:
      return ComputeBiasSoftmax(ctx, k.avx2);
    case 1:
      return ComputeSameShape(ctx, 1, k.def->name, k.avx2);
    default:
      return ComputeSameShape(ctx, 2, k.def->name, k.avx2);
  }
}

constexpr OrtCustomOp MakeOp() {
  return OrtCustomOp{
      kCustomOpVersion,
      nullptr,  // CreateKernel: CreateKernelV2 is used from version 16
      GetName,
      GetExecutionProviderType,
      GetType,
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
    {MakeOp(), "BiasSoftmax", 0},
    {MakeOp(), "SoftmaxGrad", 1},
    {MakeOp(), "GeluGrad", 2},
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
