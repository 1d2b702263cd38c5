/**
 * claimbench: reproduce claims from sequence-model papers with fixed seeds. Models are ONNX
 * graphs built in TypeScript and trained in ONNX Runtime; each claim is a suite that returns
 * checks (source, metric, threshold, expected verdict) and figures.
 *
 * The public API, listed by name.
 * @module
 */

/** Graph building: values with dtype and static shape, serialised to ONNX. */
export { Graph, type Value } from "./onnx/graph.ts";
/** Primitive op wrappers (each emits one ONNX node and has one gradient rule). */
export {
  adamW,
  type AdamWScalars,
  add,
  argMax,
  biasAttention,
  biasAttentionGrad,
  biasGelu,
  biasGeluGrad,
  biasResidual,
  columnSums,
  concat,
  div,
  exp,
  fusedMatMul,
  type FusedMatMulOptions,
  gather,
  gelu,
  geluGrad,
  layerNormGrad,
  log,
  logSoftmax,
  maskedCrossEntropy,
  maskedCrossEntropyGrad,
  matMul,
  matMulTransA,
  mul,
  type PrimitiveOp,
  reduceMean,
  reduceSum,
  reshape,
  rowLayerNorm,
  slice,
  softmax,
  sub,
  sumOfSquares,
  transpose,
  where,
} from "./onnx/ops.ts";
/** Composed layers. */
export { conv1d, crossEntropy, embedding, layerNorm, linear } from "./onnx/nn.ts";
/** Attention: causal multi-head self-attention, rotary tables, additive position biases. */
export { applyRope, causalSelfAttention, headBias, ropeTables } from "./onnx/attention.ts";
export { alibiBias, alibiSlopes, causalBias, hardAlibiBias } from "./onnx/attention_bias.ts";
/** Custom-domain ops and their portable definitions (ONNX functions). */
export {
  ADAMW,
  BIAS_ATTENTION,
  BIAS_ATTENTION_GRAD,
  BIAS_GELU,
  BIAS_GELU_GRAD,
  BIAS_RESIDUAL,
  COLUMN_SUMS,
  CONV1D_IM2COL,
  CUSTOM_DOMAIN,
  GELU_GRAD,
  LAYER_NORM_GRAD,
  MASKED_CROSS_ENTROPY,
  MASKED_CROSS_ENTROPY_GRAD,
  MATMUL_TRANS_A,
  ROW_LAYER_NORM,
  sumOfSquaresFunction,
} from "./onnx/functions.ts";
/** Reverse-mode autodiff over recorded graphs. */
export { gradients } from "./onnx/autodiff.ts";
/** The gradient table. */
export { GRADIENTS, type GradRule } from "./onnx/gradients.ts";
/** Finite-difference gradient checks. */
export { gradCheck, type GradCheckCase } from "./onnx/gradcheck.ts";
/** The train step graph (AdamW, clipping) and the learning-rate schedule. */
export {
  type AdamWConfig,
  buildTrainStep,
  drawParams,
  flatParams,
  learningRate,
  type ParamLayout,
  type ParamShape,
  paramShapes,
  type ParamSpec,
  type ScheduleConfig,
  type TrainStepSpec,
  unflatParams,
} from "./onnx/optim.ts";
/** The training loop, and the state feeds of hand-driven train steps. */
export {
  advanceFeeds,
  initialState,
  stateFeeds,
  storeFeeds,
  train,
  type TrainOptions,
  type TrainState,
} from "./onnx/trainer.ts";
/** Forward graphs over trained parameters (evaluation). */
export { type ForwardSession, forwardSession, type ForwardSpec } from "./onnx/inference.ts";
/**
 * ONNX Runtime's C API over Deno FFI: sessions that can load custom-op libraries, which
 * onnxruntime-node cannot (PLATFORM.md). Used with the native ops of `native/`.
 */
export {
  nativeOrtVersion,
  NativeSession,
  type NativeSessionOptions,
  type NativeTensor,
  type NativeTensorData,
  ortLibraryPath,
} from "./onnx/native_session.ts";
/**
 * Builds the C++ custom-op library (`BiasAttention`, `BiasAttentionGrad`, `GeluGrad`,
 * `RowLayerNorm`, `LayerNormGrad`, `ColumnSums`, `AdamW`, `BiasSoftmax`, `SoftmaxGrad`,
 * `MaskedCrossEntropy`, `MaskedCrossEntropyGrad`, `BiasResidual`, `BiasGelu`, `BiasGeluGrad`,
 * `SumOfSquares`, `MatMulTransA`) with g++.
 */
export { buildNativeOps, NATIVE_OPS_LIBRARY } from "./native/build.ts";
/**
 * ONNX Runtime sessions, on the portable engine (onnxruntime-node) or, after `useNativeOps`,
 * the native one (custom ops as C++ kernels).
 */
export {
  nativeOpsLibrary,
  Session,
  type SessionOptions,
  type Tensor,
  tensor,
  useNativeOps,
} from "./onnx/runtime.ts";
/** The seeded PRNG and seed derivation. */
export { Prng } from "./fixtures/prng.ts";
export { dataSeed, deriveSeed, initSeed } from "./fixtures/seeds.ts";
/** Task generators. */
export {
  selectiveCopyBatch,
  selectiveCopyExample,
  selectiveCopyValidationSet,
} from "./fixtures/selective_copy.ts";
export {
  copyEvalBatch,
  copyTrainBatch,
  copyVocab,
  duplicateNgramEvalBatch,
} from "./fixtures/copy_task.ts";
/** Models. */
export {
  type DilatedCnnConfig,
  dilatedCnnLogits,
  dilatedCnnParamCount,
  dilatedCnnParams,
  dilatedCnnParamShapes,
  receptiveField,
} from "./models/dilated_cnn.ts";
export {
  type TransformerConfig,
  transformerLogits,
  transformerParamCount,
  transformerParams,
  transformerParamShapes,
} from "./models/transformer.ts";
export {
  type HashCopyConfig,
  hashCopyModel,
  hashCopyPredict,
  hashCopyReference,
} from "./models/hash_copy_transformer.ts";
/** Suites: the interface, the registry and the verdict helper. */
export { check, type Suite, type SuiteContext, type SuiteOutcome } from "./suites/suite.ts";
export { SUITES } from "./suites/registry.ts";
/** Results schema and reports. */
export { type CheckResult, type RunResults, validateResults } from "./reports/schema.ts";
export { writeReport } from "./reports/report.ts";
/** The command line. */
export { main } from "./cli.ts";
