/**
 * A float64 reference of Mamba's selective scan (`docs/claims.md` §4.2, `selective_scan_ref` and
 * `selective_state_update_ref` of state-spaces/mamba), written as plain loops: what the
 * `SelectiveScan` op's definitions and kernels are checked against (SS1–SS5), and the exact
 * gradient of its recurrence.
 * @module
 */

/** The sizes of a scan: u is [batch, channels, length], the state [batch, channels, state]. */
export interface ScanDims {
  readonly batch: number;
  readonly channels: number;
  readonly length: number;
  readonly state: number;
}

/**
 * B or C in one of `selective_scan_ref`'s layouts, or the op's broadcast one: `shape` [D, N]
 * (time-invariant), [B, N, L] (selective), [B, G, N, L] (grouped: channel d reads group
 * ⌊d/(D/G)⌋), or `broadcast: true` with a rank-4 shape broadcast to [B, D, N, L].
 */
export interface ScanMatrix {
  readonly data: ArrayLike<number>;
  readonly shape: readonly number[];
  readonly broadcast?: boolean;
}

/** The inputs of {@linkcode selectiveScanReference}, as `selective_scan_ref` names them. */
export interface ScanReferenceInputs {
  readonly dims: ScanDims;
  readonly u: ArrayLike<number>; // [B, D, L]
  readonly delta: ArrayLike<number>; // [B, D, L]
  readonly A: ArrayLike<number>; // [D, N]
  readonly B: ScanMatrix;
  readonly C: ScanMatrix;
  readonly D?: ArrayLike<number>; // [D]
  readonly z?: ArrayLike<number>; // [B, D, L]
  readonly deltaBias?: ArrayLike<number>; // [D]
  readonly deltaSoftplus?: boolean;
}

/** softplus as PyTorch computes it (β 1, threshold 20: the identity above 20). */
export function softplusReference(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

/** An accessor (b, d, n, l) → value of B or C in any of {@linkcode ScanMatrix}'s layouts. */
export function scanMatrixAt(
  m: ScanMatrix,
  dims: ScanDims,
): (b: number, d: number, n: number, l: number) => number {
  const { batch, channels, length, state } = dims;
  const s = m.shape;
  const data = m.data;
  if (m.broadcast) {
    if (s.length !== 4) throw new TypeError(`A broadcast B or C is rank 4, got [${s}]`);
    const [sb, sd, sn, sl] = s;
    return (b, d, n, l) =>
      data[(((sb === 1 ? 0 : b) * sd + (sd === 1 ? 0 : d)) * sn + n) * sl + (sl === 1 ? 0 : l)];
  }
  if (s.length === 2 && s[0] === channels && s[1] === state) {
    return (_b, d, n) => data[d * state + n];
  }
  if (s.length === 3 && s[0] === batch && s[1] === state && s[2] === length) {
    return (b, _d, n, l) => data[(b * state + n) * length + l];
  }
  if (s.length === 4 && s[0] === batch && channels % s[1] === 0 && s[2] === state) {
    const groups = s[1];
    const per = channels / groups;
    return (b, d, n, l) => data[((b * groups + Math.floor(d / per)) * state + n) * length + l];
  }
  throw new TypeError(
    `B or C of shape [${s}] does not fit the scan's dims ${JSON.stringify(dims)}`,
  );
}

/** The step sizes Δ [B, D, L] of `inputs`: delta plus bias, through softplus when asked. */
export function stepSizes(inputs: ScanReferenceInputs): Float64Array {
  const { batch, channels, length } = inputs.dims;
  const dt = new Float64Array(batch * channels * length);
  for (let i = 0; i < dt.length; i++) {
    const d = Math.floor(i / length) % channels;
    const v = inputs.delta[i] + (inputs.deltaBias ? inputs.deltaBias[d] : 0);
    dt[i] = inputs.deltaSoftplus ? softplusReference(v) : v;
  }
  return dt;
}

/**
 * `selective_scan_ref` in float64: out [B, D, L] and the last state [B, D, N], every step as
 * docs/claims.md §4.2 writes it.
 */
export function selectiveScanReference(
  inputs: ScanReferenceInputs,
): { y: Float64Array; lastState: Float64Array } {
  const { batch, channels, length, state } = inputs.dims;
  const dt = stepSizes(inputs);
  const bAt = scanMatrixAt(inputs.B, inputs.dims);
  const cAt = scanMatrixAt(inputs.C, inputs.dims);
  const y = new Float64Array(batch * channels * length);
  const lastState = new Float64Array(batch * channels * state);
  const x = new Float64Array(state);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < channels; d++) {
      x.fill(0);
      for (let l = 0; l < length; l++) {
        const i = (b * channels + d) * length + l;
        let acc = 0;
        for (let n = 0; n < state; n++) {
          x[n] = Math.exp(dt[i] * inputs.A[d * state + n]) * x[n] +
            dt[i] * bAt(b, d, n, l) * inputs.u[i];
          acc += x[n] * cAt(b, d, n, l);
        }
        let out = acc + (inputs.D ? inputs.u[i] * inputs.D[d] : 0);
        if (inputs.z) {
          const z = inputs.z[i];
          out *= z / (1 + Math.exp(-z));
        }
        y[i] = out;
      }
      lastState.set(x, (b * channels + d) * state);
    }
  }
  return { y, lastState };
}

/** One decode step's inputs for channel d of one batch row (`selective_state_update_ref`). */
export interface StateUpdateInputs {
  readonly x: number;
  readonly dt: number;
  readonly A: ArrayLike<number>; // [N]
  readonly B: ArrayLike<number>; // [N]
  readonly C: ArrayLike<number>; // [N]
  readonly D?: number;
  readonly z?: number;
  readonly dtBias?: number;
  readonly dtSoftplus?: boolean;
}

/**
 * `selective_state_update_ref` for one channel: state ← state ⊙ exp(Δ·A) + Δ·B·x (in place);
 * returns out = state·C + D·x, gated by silu(z).
 */
export function selectiveStateUpdate(state: Float64Array, s: StateUpdateInputs): number {
  let dt = s.dt + (s.dtBias ?? 0);
  if (s.dtSoftplus) dt = softplusReference(dt);
  let out = 0;
  for (let n = 0; n < state.length; n++) {
    state[n] = state[n] * Math.exp(dt * s.A[n]) + dt * s.B[n] * s.x;
    out += state[n] * s.C[n];
  }
  out += (s.D ?? 0) * s.x;
  return s.z === undefined ? out : out * s.z / (1 + Math.exp(-s.z));
}

/** The gradients of the op-level scan's y (no bias, softplus, D or z), each in its input's shape. */
export interface ScanGradients {
  readonly du: Float64Array;
  readonly ddelta: Float64Array;
  readonly dA: Float64Array;
  readonly dB: Float64Array;
  readonly dC: Float64Array;
}

/**
 * The exact gradients of Σ dy ⊙ y for the `SelectiveScan` node (Δ given, B and C broadcast,
 * `broadcast: true`), from a forward pass that keeps every state and a reverse-time pass over the
 * adjoint g_l = dy_l·C_l + exp(Δ_{l+1}A) ⊙ g_{l+1}.
 */
export function selectiveScanGradReference(
  inputs: ScanReferenceInputs,
  dy: ArrayLike<number>,
): ScanGradients {
  const { batch, channels, length, state } = inputs.dims;
  if (!inputs.B.broadcast || !inputs.C.broadcast) {
    throw new TypeError("The reference gradient takes B and C in the op's broadcast layout");
  }
  const [bs, cs] = [inputs.B.shape, inputs.C.shape];
  const bIndex = (b: number, d: number, n: number, l: number) =>
    (((bs[0] === 1 ? 0 : b) * bs[1] + (bs[1] === 1 ? 0 : d)) * bs[2] + n) * bs[3] +
    (bs[3] === 1 ? 0 : l);
  const cIndex = (b: number, d: number, n: number, l: number) =>
    (((cs[0] === 1 ? 0 : b) * cs[1] + (cs[1] === 1 ? 0 : d)) * cs[2] + n) * cs[3] +
    (cs[3] === 1 ? 0 : l);
  const { u, delta, A } = inputs;
  const Bm = inputs.B.data;
  const Cm = inputs.C.data;
  const du = new Float64Array(batch * channels * length);
  const ddelta = new Float64Array(du.length);
  const dA = new Float64Array(channels * state);
  const dB = new Float64Array(Bm.length);
  const dC = new Float64Array(Cm.length);
  const xs = new Float64Array((length + 1) * state); // xs[l + 1] = x_l, xs[0] = 0
  const g = new Float64Array(state);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < channels; d++) {
      const row = (b * channels + d) * length;
      xs.fill(0);
      for (let l = 0; l < length; l++) {
        for (let n = 0; n < state; n++) {
          xs[(l + 1) * state + n] =
            Math.exp(delta[row + l] * A[d * state + n]) * xs[l * state + n] +
            delta[row + l] * u[row + l] * Bm[bIndex(b, d, n, l)];
        }
      }
      g.fill(0);
      for (let l = length - 1; l >= 0; l--) {
        const dt = delta[row + l];
        let gb = 0;
        let gdecay = 0;
        for (let n = 0; n < state; n++) {
          const a = A[d * state + n];
          if (l < length - 1) g[n] *= Math.exp(delta[row + l + 1] * a);
          g[n] += dy[row + l] * Cm[cIndex(b, d, n, l)];
          dC[cIndex(b, d, n, l)] += dy[row + l] * xs[(l + 1) * state + n];
          dB[bIndex(b, d, n, l)] += g[n] * dt * u[row + l];
          gb += g[n] * Bm[bIndex(b, d, n, l)];
          const t = g[n] * xs[l * state + n] * Math.exp(dt * a);
          gdecay += t * a;
          dA[d * state + n] += t * dt;
        }
        du[row + l] = dt * gb;
        ddelta[row + l] = u[row + l] * gb + gdecay;
      }
    }
  }
  return { du, ddelta, dA, dB, dC };
}
