// The subset of ONNX Runtime's C ABI that claimbench's custom ops use, and the tensor helpers
// every kernel file shares (shapes, inputs, outputs, errors).
//
// We do not include onnxruntime_c_api.h. The few declarations below were written from the facts
// in microsoft/onnxruntime include/onnxruntime/core/session/onnxruntime_c_api.h (the order of
// OrtApi's entries, which is append-only, and the layout of OrtCustomOp) and
// onnxruntime/core/session/custom_ops.cc (how OrtCustomOp::version gates which members ORT
// reads, and what KernelContext_ParallelFor does).

#pragma once

#include <cstddef>
#include <cstdint>
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

// Nothing below is exported from the library: RegisterCustomOps and ClaimbenchOpTable
// (registry.cc) are its only entry points.
#pragma GCC visibility push(hidden)

namespace cb {

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

// Reads entry `index` of the OrtApi table into `slot`.
template <typename F>
void LoadEntry(F& slot, const OrtApi* api, size_t index) {
  void* entry;
  std::memcpy(&entry, reinterpret_cast<const char*>(api) + index * sizeof(void*), sizeof(entry));
  slot = reinterpret_cast<F>(entry);
}

inline Api LoadApi(const OrtApi* api) {
  Api a{};
  LoadEntry(a.CreateStatus, api, 0);
  LoadEntry(a.CreateCustomOpDomain, api, 26);
  LoadEntry(a.CustomOpDomain_Add, api, 27);
  LoadEntry(a.AddCustomOpDomain, api, 28);
  LoadEntry(a.GetTensorMutableData, api, 51);
  LoadEntry(a.GetDimensionsCount, api, 61);
  LoadEntry(a.GetDimensions, api, 62);
  LoadEntry(a.GetTensorTypeAndShape, api, 65);
  LoadEntry(a.KernelContext_GetInput, api, 90);
  LoadEntry(a.KernelContext_GetOutput, api, 91);
  LoadEntry(a.ReleaseTensorTypeAndShapeInfo, api, 99);
  LoadEntry(a.KernelContext_ParallelFor, api, 274);
  return a;
}

// Written by every RegisterCustomOps call, always with the same table (one ORT per process).
// One definition for the whole library (a C++17 inline variable).
inline Api g_api{};

#define CB_RETURN_IF_ERROR(expr)            \
  do {                                      \
    OrtStatus* status_ = (expr);            \
    if (status_ != nullptr) return status_; \
  } while (0)

inline OrtStatus* Error(const std::string& msg) {
  return g_api.CreateStatus(kOrtInvalidArgument, msg.c_str());
}

// ---------------------------------------------------------------------------------------------
// Tensors

struct Shape {
  int64_t dims[16];
  size_t rank = 0;
};

inline OrtStatus* GetShape(const OrtValue* v, Shape* shape, const char* what) {
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

inline std::string ShapeString(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.rank; ++i) {
    if (i) out += ", ";
    out += std::to_string(s.dims[i]);
  }
  return out + "]";
}

inline bool SameShape(const Shape& a, const Shape& b) {
  if (a.rank != b.rank) return false;
  for (size_t i = 0; i < a.rank; ++i) {
    if (a.dims[i] != b.dims[i]) return false;
  }
  return true;
}

// The number of rows of a tensor split along its last axis: the product of its leading dims.
inline int64_t LeadingRows(const Shape& s) {
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < s.rank; ++i) rows *= s.dims[i];
  return rows;
}

// Input `index` (named `what` in errors): its shape and data, only read (the API has one
// accessor for both directions).
inline OrtStatus* GetInputData(OrtKernelContext* ctx, size_t index, const char* what,
                               Shape* shape, const float** data) {
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
inline OrtStatus* MakeOutputAt(OrtKernelContext* ctx, size_t index, const Shape& shape,
                               float** out) {
  OrtValue* v = nullptr;
  CB_RETURN_IF_ERROR(g_api.KernelContext_GetOutput(ctx, index, shape.dims, shape.rank, &v));
  void* p = nullptr;
  CB_RETURN_IF_ERROR(g_api.GetTensorMutableData(v, &p));
  *out = static_cast<float*>(p);
  return nullptr;
}

}  // namespace cb

#pragma GCC visibility pop
