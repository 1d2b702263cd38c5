// Host-side plumbing the CUDA entry points share (metric_attention.cu, selective_scan.cu): the
// export and error-return macros, device buffers freed on every return path, host <-> device
// copies and timing events. Each .cu file includes it in its own translation unit.

#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#define CB_CUDA_EXPORT extern "C" __attribute__((visibility("default")))
// Returns −(the CUDA error code) from an entry point when `expr` fails.
#define CB_CUDA_TRY(expr)                                                    \
  do {                                                                       \
    const cudaError_t cb_cuda_err_ = (expr);                                 \
    if (cb_cuda_err_ != cudaSuccess) return -static_cast<int>(cb_cuda_err_); \
  } while (0)

namespace {

// Device buffers freed when it goes out of scope.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  ~DeviceMemory() {
    for (void* q : ptrs_) cudaFree(q);
  }
  cudaError_t Alloc(float** out, int64_t count) {
    void* q = nullptr;
    const size_t n = static_cast<size_t>(count > 0 ? count : 1);
    const cudaError_t e = cudaMalloc(&q, n * sizeof(float));
    if (e != cudaSuccess) return e;
    ptrs_.push_back(q);
    *out = static_cast<float*>(q);
    return cudaSuccess;
  }

 private:
  std::vector<void*> ptrs_;
};

cudaError_t Upload(float** dst, DeviceMemory& mem, const float* src, int64_t count) {
  const cudaError_t e = mem.Alloc(dst, count);
  if (e != cudaSuccess) return e;
  return cudaMemcpy(*dst, src, static_cast<size_t>(count) * sizeof(float),
                    cudaMemcpyHostToDevice);
}

cudaError_t Download(float* dst, const float* src, int64_t count) {
  return cudaMemcpy(dst, src, static_cast<size_t>(count) * sizeof(float), cudaMemcpyDeviceToHost);
}

// Releases the events on every path.
class Events {
 public:
  cudaEvent_t start = nullptr, stop = nullptr;
  Events() = default;
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
  ~Events() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
};

// *ms_per_call = mean milliseconds of `call` (a launch returning cudaError_t) over `repeats`
// calls on the default stream, after two warm-up calls; 0, or −(the CUDA error code).
template <typename Call>
int TimeCalls(const Call& call, int repeats, double* ms_per_call) {
  for (int i = 0; i < 2; ++i) CB_CUDA_TRY(call());
  CB_CUDA_TRY(cudaDeviceSynchronize());
  Events ev;
  CB_CUDA_TRY(cudaEventCreate(&ev.start));
  CB_CUDA_TRY(cudaEventCreate(&ev.stop));
  CB_CUDA_TRY(cudaEventRecord(ev.start, nullptr));
  for (int i = 0; i < repeats; ++i) CB_CUDA_TRY(call());
  CB_CUDA_TRY(cudaEventRecord(ev.stop, nullptr));
  CB_CUDA_TRY(cudaEventSynchronize(ev.stop));
  float ms = 0.f;
  CB_CUDA_TRY(cudaEventElapsedTime(&ms, ev.start, ev.stop));
  *ms_per_call = static_cast<double>(ms) / repeats;
  return 0;
}

}  // namespace
