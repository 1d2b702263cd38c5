/**
 * The loss family: `MaskedCrossEntropy` and its gradient `MaskedCrossEntropyGrad`, the masked
 * mean negative log-likelihood the models train on. Native kernels: `native/kernels/loss.cc`.
 * @module
 */
import { staticShape, type Value } from "../graph.ts";
import {
  div,
  exp,
  expand,
  isFloat,
  logSoftmax,
  mul,
  neg,
  oneHot,
  reduceSum,
  reshape,
  sub,
} from "../ops.ts";
import {
  type CustomOp,
  emitCustomOp,
  nodeInputs,
  secondOrder,
  traceFunction,
  traceInputs,
} from "./kit.ts";

/** Checks the shapes and dtypes of the cross-entropy ops: logits [..., V], targets and mask [...]. */
function checkCrossEntropy(action: string, logits: Value, targets: Value, mask: Value): void {
  const ls = staticShape(logits, action);
  const rows = ls.slice(0, -1).join();
  if (
    ls.length < 1 || !isFloat(logits.dtype) || mask.dtype !== logits.dtype ||
    targets.dtype !== "int32" ||
    staticShape(targets, action).join() !== rows || staticShape(mask, action).join() !== rows
  ) {
    throw new TypeError(
      `Cannot ${action}: logits must be float [..., V], targets int32 [...] and mask ` +
        `[...] of the logits' dtype: current logits [${logits.shape}] ${logits.dtype}, targets ` +
        `[${targets.shape}] ${targets.dtype}, mask [${mask.shape}] ${mask.dtype}`,
    );
  }
}

/**
 * log p = LogSoftmax(logits) over the last axis and the targets' one-hot rows [..., V] in the
 * logits' type (a target outside [0, V) matches no class), as both ops start.
 */
function crossEntropyTerms(logits: Value, targets: Value): [Value, Value] {
  const v = staticShape(logits, "compute cross-entropy").at(-1)!;
  return [logSoftmax(logits, { axis: -1 }), oneHot(targets, v, logits.dtype)];
}

/**
 * `MaskedCrossEntropy(Logits [..., V], Targets [...], Mask [...]) → Loss []`: the mean negative
 * log-likelihood of the targets over the positions the mask weights, Σ Mask·(−log p_target) /
 * Σ Mask. Targets are int32 (the native kernel's type). The native kernel does each row in one
 * pass.
 */
export const MASKED_CROSS_ENTROPY: CustomOp<"MaskedCrossEntropy"> = {
  name: "MaskedCrossEntropy",
  inputs: ["Logits", "Targets", "Mask"],
  outputs: ["Loss"],
  gradient: (args) => {
    const [logits, targets, mask] = nodeInputs(args);
    if (args.needs[2]) {
      throw new TypeError("Cannot differentiate MaskedCrossEntropy's mask: it weighs, not learns");
    }
    return [
      args.needs[0] ? maskedCrossEntropyGrad(args.dy, logits, targets, mask) : null,
      null,
      null,
    ];
  },
  // Masks 0, ½ and 1 and a target outside the classes (it matches none and adds nothing).
  gradCheck: [{
    dtype: "float64",
    inputs: [
      { shape: [2, 3, 4] },
      { shape: [2, 3], dtype: "int32", data: [2, 0, 1, 3, -1, 1] },
      { shape: [2, 3], data: [1, 0, 0.5, 1, 1, 1], differentiable: false },
    ],
    build: ([logits, t, m]) => maskedCrossEntropy(logits, t, m),
  }],
  kernel: {
    inputs: [
      { shape: [4, 25, 30] },
      { shape: [4, 25], dtype: "int32", data: Array.from({ length: 100 }, (_, i) => i % 31) },
      { shape: [4, 25], data: Array.from({ length: 100 }, (_, i) => [1, 0, 0.5, 1][i % 4]) },
    ],
    build: ([logits, t, m]) => [maskedCrossEntropy(mul(logits, 3), t, m)],
    agreement: 1e-6,
  },
};

/** Σ mask·(−log softmax(logits)[target]) / Σ mask over every position → scalar. */
export function maskedCrossEntropy(logits: Value, targets: Value, mask: Value): Value {
  checkCrossEntropy("apply MaskedCrossEntropy", logits, targets, mask);
  const definition = traceFunction(
    MASKED_CROSS_ENTROPY.name,
    traceInputs(MASKED_CROSS_ENTROPY, [logits, targets, mask], [
      logits.shape,
      targets.shape,
      mask.shape,
    ]),
    MASKED_CROSS_ENTROPY.outputs,
    ([Logits, Targets, Mask]) => {
      const [logp, hot] = crossEntropyTerms(Logits, Targets);
      const nll = neg(reduceSum(mul(logp, hot), [-1])); // [...]
      return [div(reduceSum(mul(nll, Mask), []), reduceSum(Mask, []))];
    },
  );
  return emitCustomOp(
    MASKED_CROSS_ENTROPY,
    definition,
    [logits, targets, mask],
    [{ dtype: logits.dtype, shape: [] }],
  )[0];
}

/**
 * `MaskedCrossEntropyGrad(dLoss, Logits, Targets, Mask) → dLogits`: the gradient of
 * {@linkcode MASKED_CROSS_ENTROPY} with respect to Logits, dLoss·Mask/ΣMask·(p − OneHot) per
 * position, as reverse mode derives it from that composition (its forward values recomputed).
 */
export const MASKED_CROSS_ENTROPY_GRAD: CustomOp<"MaskedCrossEntropyGrad"> = {
  name: "MaskedCrossEntropyGrad",
  inputs: ["dLoss", "Logits", "Targets", "Mask"],
  outputs: ["dLogits"],
  gradient: secondOrder("MaskedCrossEntropyGrad"),
  // Checked as MaskedCrossEntropy's rule, which emits it.
  gradCheck: "not differentiable",
  kernel: {
    inputs: [
      { shape: [], data: [0.37] },
      { shape: [4, 25, 30] },
      { shape: [4, 25], dtype: "int32", data: Array.from({ length: 100 }, (_, i) => i % 31) },
      { shape: [4, 25], data: Array.from({ length: 100 }, (_, i) => [1, 0, 0.5, 1][i % 4]) },
    ],
    build: ([dLoss, logits, t, m]) => [maskedCrossEntropyGrad(dLoss, mul(logits, 3), t, m)],
    agreement: 1e-6,
  },
};

/** The logits' gradient [..., V] of {@linkcode maskedCrossEntropy}, given dLoss (a scalar). */
export function maskedCrossEntropyGrad(
  dLoss: Value,
  logits: Value,
  targets: Value,
  mask: Value,
): Value {
  checkCrossEntropy("differentiate MaskedCrossEntropy", logits, targets, mask);
  if (dLoss.shape.length !== 0 || dLoss.dtype !== logits.dtype) {
    throw new TypeError(
      `Cannot differentiate MaskedCrossEntropy as dLoss must be a ${logits.dtype} scalar: ` +
        `current value is [${dLoss.shape}] ${dLoss.dtype}`,
    );
  }
  const rows = staticShape(mask, "differentiate MaskedCrossEntropy");
  const ls = staticShape(logits, "differentiate MaskedCrossEntropy");
  const definition = traceFunction(
    MASKED_CROSS_ENTROPY_GRAD.name,
    traceInputs(MASKED_CROSS_ENTROPY_GRAD, [dLoss, logits, targets, mask], [[], ls, rows, rows]),
    MASKED_CROSS_ENTROPY_GRAD.outputs,
    ([DLoss, Logits, Targets, Mask]) => {
      const [logp, hot] = crossEntropyTerms(Logits, Targets);
      // Loss = Σ(Nll·Mask)/ΣMask with Nll = −Σ_classes log p·OneHot, in reverse.
      const dTotal = div(DLoss, reduceSum(Mask, []));
      const dNll = mul(expand(reshape(dTotal, rows.map(() => 1)), rows), Mask); // [...]
      const dRowLogP = reshape(neg(dNll), [...rows, 1]); // [..., 1]
      const dLogP = mul(expand(dRowLogP, ls), hot); // [..., V]
      const dLogPSum = reduceSum(dLogP, [-1], { keepdims: true });
      return [sub(dLogP, mul(exp(logp), dLogPSum))];
    },
  );
  return emitCustomOp(
    MASKED_CROSS_ENTROPY_GRAD,
    definition,
    [dLoss, logits, targets, mask],
    [{ dtype: logits.dtype, shape: logits.shape }],
  )[0];
}
