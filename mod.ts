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
  add,
  argMax,
  concat,
  constantOfShape,
  div,
  exp,
  fusedMatMul,
  type FusedMatMulOptions,
  gather,
  gelu,
  log,
  logSoftmax,
  matMul,
  mul,
  padTo,
  type PrimitiveOp,
  reduceMean,
  reduceSum,
  reshape,
  reshapeTo,
  scan,
  type ScanInput,
  type ScanOutput,
  type ScanStep,
  shapeOf,
  slice,
  softmax,
  softplus,
  sub,
  transpose,
  where,
} from "./onnx/ops.ts";
/** Composed layers. */
export { conv1d, crossEntropy, embedding, layerNorm, linear, silu } from "./onnx/nn.ts";
/** Attention: causal multi-head self-attention, rotary tables, additive position biases. */
export { applyRope, causalSelfAttention, headBias, ropeTables } from "./onnx/attention.ts";
export { alibiBias, alibiSlopes, causalBias, hardAlibiBias } from "./onnx/attention_bias.ts";
/**
 * The custom-op kit: claimbench's own ONNX ops (`ai.claimbench`), each a typed wrapper, a
 * definition traced from its composition, a gradient rule and its checks, listed in
 * `CUSTOM_OPS` (see `onnx/custom/README.md`).
 */
export {
  CUSTOM_DOMAIN,
  type CustomOp,
  emitCustomOp,
  type KernelCheck,
  traceFunction,
  type TraceInput,
} from "./onnx/custom/kit.ts";
export { CUSTOM_OPS, type CustomOpName } from "./onnx/custom/registry.ts";
/** Attention from packed projections with a bias on the scores, and its gradient. */
export {
  attentionCore,
  BIAS_ATTENTION,
  BIAS_ATTENTION_GRAD,
  biasAttention,
  biasAttentionGrad,
} from "./onnx/custom/attention.ts";
/** The dilated CNN's convolution (im2col + MatMul), and Mamba's causal depthwise one. */
export {
  CAUSAL_DEPTHWISE_CONV1D,
  CAUSAL_DEPTHWISE_CONV1D_GRAD,
  causalDepthwiseConv1d,
  causalDepthwiseConv1dGrad,
  CONV1D_IM2COL,
  conv1dIm2col,
  type Conv1dOptions,
  im2colIndex,
} from "./onnx/custom/conv.ts";
/** The exact GELU's gradient, and a linear layer's bias + GELU with its gradient. */
export {
  BIAS_GELU,
  BIAS_GELU_GRAD,
  biasGelu,
  biasGeluGrad,
  GELU_GRAD,
  geluGrad,
  geluSlope,
} from "./onnx/custom/gelu.ts";
/** LayerNorm of rows and its gradients. */
export {
  LAYER_NORM_GRAD,
  layerNormGrad,
  ROW_LAYER_NORM,
  rowLayerNorm,
} from "./onnx/custom/layer_norm.ts";
/** A linear layer's bias and weight gradients, and its bias + residual add. */
export {
  BIAS_RESIDUAL,
  biasResidual,
  COLUMN_SUMS,
  columnSums,
  MATMUL_TRANS_A,
  matMulTransA,
} from "./onnx/custom/linear.ts";
/** The masked cross-entropy loss and its gradient. */
export {
  MASKED_CROSS_ENTROPY,
  MASKED_CROSS_ENTROPY_GRAD,
  maskedCrossEntropy,
  maskedCrossEntropyGrad,
} from "./onnx/custom/loss.ts";
/** AdamW on flat vectors, and the clipping norm's sum of squares. */
export {
  ADAMW,
  adamW,
  type AdamWScalars,
  SUM_OF_SQUARES,
  sumOfSquares,
} from "./onnx/custom/optim.ts";
/**
 * Metric-tensor attention (nlp-metaformer's README variant, causal by default): one projection
 * per head, a packed symmetric metric, values = the same projection; and its gradient.
 */
export {
  METRIC_ATTENTION,
  METRIC_ATTENTION_GRAD,
  metricAttention,
  metricAttentionGrad,
  type MetricAttentionOptions,
  packedMetricIndex,
} from "./onnx/custom/metric_attention.ts";
/** Mamba's selective scan (selective and time-invariant B, C) and its gradient. */
export {
  SELECTIVE_SCAN,
  SELECTIVE_SCAN_GRAD,
  selectiveScan,
  selectiveScanGrad,
  selectiveScanNode,
  type SelectiveScanOptions,
} from "./onnx/custom/selective_scan.ts";
/** Each matrix of a batch transposed: the selective scan's layout change. */
export { BATCH_TRANSPOSE, batchTranspose } from "./onnx/custom/transpose.ts";
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
/** The state feeds of train steps (the training loop's, or hand-driven ones). */
export {
  advanceFeeds,
  initialStepState,
  stateFeeds,
  stateParams,
  type StepState,
  storeFeeds,
} from "./onnx/step_state.ts";
/** The training loop, the engine as a value, training with the model cache. */
export { initialState, train, type TrainOptions, type TrainState } from "./runner/trainer.ts";
export { type EngineInfo, type EngineKind, openEngine } from "./runner/engine.ts";
export { trainCached, type TrainContext, type TrainJob } from "./runner/training.ts";
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
  profiledOpTypes,
} from "./onnx/native_session.ts";
/**
 * Builds the C++ kernels of the custom ops (`native/kernels/`, one file per family) with g++,
 * and their CUDA kernels (`native/cuda/`) with nvcc where it is installed.
 */
export {
  buildCudaOps,
  buildNativeOps,
  CUDA_OPS_LIBRARY,
  NATIVE_OPS_LIBRARY,
} from "./native/build.ts";
/** The op table of a built native library (its ops and arities, as its kernel files register). */
export { type NativeOp, nativeOpTable } from "./native/op_table.ts";
/**
 * ONNX Runtime sessions, on the portable engine (onnxruntime-node) or the native one (custom ops
 * as C++ kernels), as each session's options say.
 */
export {
  type Engine,
  nativeEngine,
  PORTABLE_ENGINE,
  Session,
  type SessionOptions,
  type Tensor,
  tensor,
} from "./onnx/runtime.ts";
/** The seeded PRNG and seed derivation. */
export { Prng, type RandomSource } from "./fixtures/prng.ts";
export { dataSeed, deriveSeed, initSeed } from "./fixtures/seeds.ts";
/** Task generators. */
export {
  selectiveCopyBatch,
  selectiveCopyExample,
  selectiveCopyValidationSet,
} from "./fixtures/selective_copy.ts";
export { s4CopyingBatch, type S4CopyingOptions } from "./fixtures/s4_copying.ts";
export {
  copyEvalBatch,
  copyTrainBatch,
  copyVocab,
  duplicateNgramEvalBatch,
} from "./fixtures/copy_task.ts";
export {
  CHAR_ALPHABET,
  charCorpus,
  charIds,
  charText,
  corpusBatch,
} from "./fixtures/char_corpus.ts";
/** The retrieval tasks of "Repeat After Me": n-gram lookup (J7) and the phone-book analogue (J8). */
export {
  ngramLookupBatch,
  type NgramLookupOptions,
  ngramLookupString,
} from "./fixtures/ngram_lookup.ts";
export {
  PHONEBOOK_VOCAB,
  phonebookBatch,
  type PhonebookOptions,
  phonebookText,
} from "./fixtures/phonebook.ts";
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
  type AttentionKind,
  type TransformerConfig,
  transformerLogits,
  transformerParamCount,
  transformerParams,
  transformerParamShapes,
} from "./models/transformer.ts";
export {
  type MambaConfig,
  mambaLogits,
  mambaParamCount,
  mambaParams,
  mambaStateBits,
  type SsmLayer,
} from "./models/mamba.ts";
export {
  type LstmConfig,
  lstmLogits,
  lstmParamCount,
  lstmParams,
  lstmStateBits,
} from "./models/lstm.ts";
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
