/**
 * Trained models on disk, keyed by a hash of (model config, training config, seed, engine
 * version of `runner/engine.ts`), so re-running a suite regenerates its report without
 * retraining. A training run checkpoints every 30 s and resumes from its last checkpoint when
 * killed. Every file is written to a temporary name and renamed, so no entry is ever
 * half-written.
 * @module
 */
import { createHash } from "node:crypto";
import { writeFileAtomic } from "../io/atomic.ts";
import type { TrainState } from "./trainer.ts";

const MAGIC = "claimbench-state/1\n";

/** Serialises a train state: magic line, u32 header length, JSON header, float32 tensors. */
export function encodeState(state: TrainState, meta: unknown): Uint8Array {
  const entries = [...state.tensors.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header = JSON.stringify({
    meta,
    step: state.step,
    losses: state.losses,
    evals: state.evals,
    window: state.window,
    tensors: entries.map(([name, data]) => ({ name, length: data.length })),
  });
  const magic = new TextEncoder().encode(MAGIC);
  const head = new TextEncoder().encode(header);
  const headPadded = Math.ceil((magic.length + 4 + head.length) / 4) * 4;
  const total = headPadded + entries.reduce((n, [, d]) => n + d.byteLength, 0);
  const out = new Uint8Array(total);
  out.set(magic, 0);
  new DataView(out.buffer).setUint32(magic.length, head.length, true);
  out.set(head, magic.length + 4);
  out.fill(0x20, magic.length + 4 + head.length, headPadded);
  let o = headPadded;
  for (const [, d] of entries) {
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), o);
    o += d.byteLength;
  }
  return out;
}

/** Parses {@linkcode encodeState}'s bytes; TypeError on anything malformed. */
export function decodeState(bytes: Uint8Array): { state: TrainState; meta: unknown } {
  const magic = new TextEncoder().encode(MAGIC);
  const ok = bytes.length >= magic.length + 4 && magic.every((b, i) => bytes[i] === b);
  if (!ok) throw new TypeError("Cannot read a train state: bad magic");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLen = view.getUint32(magic.length, true);
  const headEnd = magic.length + 4 + headLen;
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(magic.length + 4, headEnd)));
  let o = Math.ceil(headEnd / 4) * 4;
  const tensors = new Map<string, Float32Array>();
  for (const t of header.tensors as { name: string; length: number }[]) {
    if (o + t.length * 4 > bytes.length) {
      throw new TypeError("Cannot read a train state: truncated");
    }
    tensors.set(t.name, new Float32Array(bytes.slice(o, o + t.length * 4).buffer));
    o += t.length * 4;
  }
  if (o !== bytes.length) throw new TypeError("Cannot read a train state: trailing bytes");
  return {
    state: {
      step: header.step,
      tensors,
      losses: header.losses,
      evals: header.evals,
      window: header.window,
    },
    meta: header.meta,
  };
}

/** Hex SHA-256 of a canonical JSON encoding of `key`. */
export function cacheKey(key: unknown): string {
  return createHash("sha256").update(canonicalJson(key)).digest("hex").slice(0, 32);
}

/** JSON with object keys sorted, so equal configs hash equally. */
export function canonicalJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonicalJson).join(",")}]`;
  if (x && typeof x === "object") {
    const keys = Object.keys(x).sort();
    return `{${
      keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((x as Record<string, unknown>)[k])}`)
        .join(",")
    }}`;
  }
  return JSON.stringify(x);
}

/** A folder of trained models and checkpoints. */
export class ModelCache {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  #path(key: string, kind: "final" | "checkpoint"): string {
    return `${this.dir}/${key}.${kind === "final" ? "state" : "ckpt"}`;
  }

  /** The finished entry of `key`, or undefined. */
  load(key: string, kind: "final" | "checkpoint" = "final"): TrainState | undefined {
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(this.#path(key, kind));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
    return decodeState(bytes).state;
  }

  /** Stores `state` atomically. */
  async save(
    key: string,
    kind: "final" | "checkpoint",
    state: TrainState,
    meta: unknown,
  ): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.#path(key, kind), encodeState(state, meta));
  }

  /** Removes an entry if present. */
  async remove(key: string, kind: "final" | "checkpoint"): Promise<void> {
    try {
      await Deno.remove(this.#path(key, kind));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}
