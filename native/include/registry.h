// Self-registration of claimbench's custom ops (domain "ai.claimbench"). Each kernel file names
// its ops at namespace scope, one line per op:
//
//   CB_REGISTER_OP("GeluGrad", /*inputs*/ 2, /*outputs*/ 1, /*int32 inputs*/ 0, ComputeGeluGrad);
//
// and native/registry.cc hands every registered op to ONNX Runtime (RegisterCustomOps) and lists
// them (ClaimbenchOpTable), so adding an op edits no central table.

#pragma once

#include <cstddef>
#include <cstdint>

#include "ort_abi.h"
#include "simd.h"

#pragma GCC visibility push(hidden)

namespace cb {

// An op's kernel: reads its inputs from ctx, allocates and writes its outputs, at vector width
// `simd` (fixed when ORT creates the kernel: see CreateKernelV2 in registry.cc).
using ComputeFn = OrtStatus* (*)(OrtKernelContext* ctx, Simd simd);

// Adds op `name` with `inputs` inputs (float32, but int32 where bit i of `int32_inputs` is set)
// and `outputs` float32 outputs, computed by `compute`. Called by CB_REGISTER_OP while the
// library loads; `name` must outlive the library (a string literal). A name registered twice
// makes RegisterCustomOps fail. Returns true.
bool RegisterOp(const char* name, size_t inputs, size_t outputs, uint32_t int32_inputs,
                ComputeFn compute);

}  // namespace cb

#pragma GCC visibility pop

#define CB_CONCAT_(a, b) a##b
#define CB_CONCAT(a, b) CB_CONCAT_(a, b)

// Registers an op (see RegisterOp) from a static initializer of the kernel file; RegisterOp keeps
// its registry in a function-local static, so the order in which files initialise does not
// matter.
#define CB_REGISTER_OP(name, inputs, outputs, int32_inputs, compute)            \
  [[maybe_unused]] static const bool CB_CONCAT(cb_registered_op_, __LINE__) = \
      ::cb::RegisterOp(name, inputs, outputs, int32_inputs, compute)
