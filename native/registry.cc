// claimbench's native custom ops for ONNX Runtime (CPU, float32), domain "ai.claimbench": the
// OrtCustomOp plumbing and the library's two entry points. The kernels live in kernels/, one file
// per op family, each registering its ops with CB_REGISTER_OP (include/registry.h); every op has
// an ONNX function definition in onnx/custom/ (the portable engine runs those), and the
// kernels compute the same functions with their own rounding (include/simd.h says how the bits
// are kept the same on every machine).
//
// Build: native/build.ts compiles this file and kernels/*.cc with g++ -O2 -fPIC -shared
// -std=c++17 -ffp-contract=off -fno-math-errno into one library. Load it with
// OrtApi::RegisterCustomOpsLibrary_V2, which calls RegisterCustomOps below; ClaimbenchOpTable
// lists the registered ops (native/op_table.ts).

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "include/ort_abi.h"
#include "include/registry.h"
#include "include/simd.h"

namespace cb {
namespace {

// An op as ORT sees it, plus what our callbacks need. A kernel is just the op and its width;
// ORT passes it back to KernelComputeV2.
struct OpDef {
  OrtCustomOp op;  // first member, so an OrtCustomOp* is an OpDef*
  const char* name;
  size_t inputs;
  size_t outputs;
  uint32_t int32_inputs;  // bit i set: input i is int32, not float
  ComputeFn compute;
};

// Every registered op, in registration order. A deque never moves its elements, so the
// OrtCustomOp pointers ORT keeps stay valid. Function-local, so it exists before the first
// CB_REGISTER_OP of any file runs.
std::deque<OpDef>& Registry() {
  static std::deque<OpDef> ops;
  return ops;
}

// The first name registered twice, if any (RegisterCustomOps reports it).
std::string& DuplicateName() {
  static std::string name;
  return name;
}

// The registered ops, sorted by name: the order they are added to the domain and listed in.
std::vector<const OpDef*> SortedOps() {
  std::vector<const OpDef*> ops;
  for (const OpDef& def : Registry()) ops.push_back(&def);
  std::sort(ops.begin(), ops.end(), [](const OpDef* a, const OpDef* b) {
    return std::strcmp(a->name, b->name) < 0;
  });
  return ops;
}

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
  return k.def->compute(ctx, k.simd);
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

constexpr const char* kDomain = "ai.claimbench";

}  // namespace

bool RegisterOp(const char* name, size_t inputs, size_t outputs, uint32_t int32_inputs,
                ComputeFn compute) {
  for (const OpDef& def : Registry()) {
    if (std::strcmp(def.name, name) == 0 && DuplicateName().empty()) DuplicateName() = name;
  }
  Registry().push_back(OpDef{MakeOp(), name, inputs, outputs, int32_inputs, compute});
  return true;
}

}  // namespace cb

// Entry point for OrtApi::RegisterCustomOpsLibrary_V2. The domain object stays alive for as long
// as sessions may use it: ORT does not take ownership, and it is a few hundred bytes per
// registration, so it is deliberately never released.
extern "C" __attribute__((visibility("default"))) OrtStatus* RegisterCustomOps(
    OrtSessionOptions* options, const OrtApiBase* base) {
  using cb::g_api;
  const OrtApi* api = base->GetApi(cb::kApiVersion);
  if (api == nullptr) {
    // Entry 0 (CreateStatus) exists at every version: report which runtime we got.
    const OrtApi* any = base->GetApi(1);
    if (any == nullptr) return nullptr;
    cb::LoadEntry(g_api.CreateStatus, any, 0);
    const std::string msg =
        std::string("Cannot register claimbench ops as they need ONNX Runtime API version 18 or ") +
        "newer: current runtime is " + base->GetVersionString();
    return g_api.CreateStatus(cb::kOrtFail, msg.c_str());
  }
  g_api = cb::LoadApi(api);
  if (!cb::DuplicateName().empty()) {
    const std::string msg = "Cannot register claimbench ops as " + cb::DuplicateName() +
                            " is registered twice (two CB_REGISTER_OP lines name it)";
    return g_api.CreateStatus(cb::kOrtFail, msg.c_str());
  }
  OrtCustomOpDomain* domain = nullptr;
  CB_RETURN_IF_ERROR(g_api.CreateCustomOpDomain(cb::kDomain, &domain));
  for (const cb::OpDef* def : cb::SortedOps()) {
    CB_RETURN_IF_ERROR(g_api.CustomOpDomain_Add(domain, &def->op));
  }
  return g_api.AddCustomOpDomain(options, domain);
}

// The registered ops as a JSON array sorted by name, e.g.
// [{"name":"AdamW","inputs":14,"outputs":3},...]: for tests that check the op table against the
// TS registry (native/op_table.ts). The string lives as long as the library.
extern "C" __attribute__((visibility("default"))) const char* ClaimbenchOpTable() {
  static const std::string table = [] {
    std::string json = "[";
    for (const cb::OpDef* def : cb::SortedOps()) {
      if (json.size() > 1) json += ",";
      // Names are C identifiers (ONNX op types): nothing to escape.
      json += std::string("{\"name\":\"") + def->name + "\",\"inputs\":" +
              std::to_string(def->inputs) + ",\"outputs\":" + std::to_string(def->outputs) + "}";
    }
    return json + "]";
  }();
  return table.c_str();
}
