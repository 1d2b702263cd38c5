// The CUDA half of claimbench's native ops: one .cu file per op family (selective_scan.cu,
// metric_attention.cu), all built by native/build.ts (buildCudaOps) with nvcc into
// .cache/native/libclaimbench_cuda.so wherever nvcc exists. This file holds what every family
// needs first: whether there is a device at all.

#include <cuda_runtime.h>

// The number of CUDA devices, or −(the CUDA error code) when it cannot be had. Without a GPU
// that is −35 (cudaErrorInsufficientDriver: no driver), −100 (cudaErrorNoDevice) or −34
// (cudaErrorStubLibrary: only the toolkit's stub libcuda), so callers can fall back to the CPU.
extern "C" __attribute__((visibility("default"))) int ClaimbenchCudaDeviceCount() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  return err == cudaSuccess ? count : -static_cast<int>(err);
}
