/**
 * Trained models on disk, keyed by a hash of (model config, training config, seed, engine
 * version of `runner/engine.ts`), so re-running a suite regenerates its report without
 * retraining. A training run checkpoints every 30 s and resumes from its last checkpoint when
 * killed. Every file is written to a temporary name and renamed, so no entry is ever
 * half-written; every entry ends with a SHA-256 of all its other bytes, so an entry that was
 * damaged on disk is discarded and rebuilt rather than served (issue 15).
 * @module
 */
import { createHash } from "node:crypto";
import { writeFileAtomic } from "../io/atomic.ts";
import type { TrainState } from "./trainer.ts";

// /2 added the SHA-256 trailer; /1 entries have none and are rebuilt.
const MAGIC = "claimbench-state/2\n";
const DIGEST_BYTES = 32;

/** A cache entry that cannot be trusted; `reason` says why in a few words, for a warning line. */
export class BadStateError extends TypeError {
  /** E.g. `checksum mismatch`, `truncated: 100 of 244 bytes`. */
  readonly reason: string;

  constructor(reason: string) {
    super(`Cannot read a train state as the entry is invalid: ${reason}`);
    this.name = "BadStateError";
    this.reason = reason;
  }
}

/**
 * Serialises a train state: magic line, u32 header length, JSON header (meta, step, losses,
 * evals, window, tensor names and lengths) padded with spaces to 4 bytes, float32 tensors in name
 * order, then the SHA-256 of all the bytes before it (32 bytes).
 */
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
  const body = headPadded + entries.reduce((n, [, d]) => n + d.byteLength, 0);
  const out = new Uint8Array(body + DIGEST_BYTES);
  out.set(magic, 0);
  new DataView(out.buffer).setUint32(magic.length, head.length, true);
  out.set(head, magic.length + 4);
  out.fill(0x20, magic.length + 4 + head.length, headPadded);
  let o = headPadded;
  for (const [, d] of entries) {
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), o);
    o += d.byteLength;
  }
  out.set(sha256(out.subarray(0, body)), body);
  return out;
}

/**
 * Parses {@linkcode encodeState}'s bytes after checking their SHA-256; a
 * {@linkcode BadStateError} for anything else (another format, truncated, damaged, malformed).
 */
export function decodeState(bytes: Uint8Array): { state: TrainState; meta: unknown } {
  const magic = new TextEncoder().encode(MAGIC);
  if (!magic.every((b, i) => bytes[i] === b)) throw new BadStateError(foreignFormat(bytes));
  const body = bytes.length - DIGEST_BYTES;
  if (body < magic.length + 4) throw new BadStateError(`truncated: ${bytes.length} bytes`);
  const digest = sha256(bytes.subarray(0, body));
  if (!digest.every((b, i) => bytes[body + i] === b)) {
    // The header is not to be trusted here; it only tells a cut-off entry from a damaged one.
    const declared = declaredLength(bytes, magic.length);
    throw new BadStateError(
      declared > bytes.length
        ? `truncated: ${bytes.length} of ${declared} bytes`
        : "checksum mismatch",
    );
  }
  // The bytes are the ones written: what fails below is a writer's bug, reported all the same.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headEnd = magic.length + 4 + view.getUint32(magic.length, true);
  if (headEnd > body) throw new BadStateError("malformed: header past the end");
  const header = parseHeader(bytes.subarray(magic.length + 4, headEnd));
  let o = Math.ceil(headEnd / 4) * 4;
  const tensors = new Map<string, Float32Array>();
  for (const t of header.tensors) {
    if (o + t.length * 4 > body) throw new BadStateError("malformed: tensors past the end");
    tensors.set(t.name, new Float32Array(bytes.slice(o, o + t.length * 4).buffer));
    o += t.length * 4;
  }
  if (o !== body) throw new BadStateError("malformed: bytes after the tensors");
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

interface Header {
  meta: unknown;
  step: TrainState["step"];
  losses: TrainState["losses"];
  evals: TrainState["evals"];
  window: TrainState["window"];
  tensors: { name: string; length: number }[];
}

function parseHeader(bytes: Uint8Array): Header {
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new BadStateError("malformed: header is not JSON");
  }
  const ok = typeof header === "object" && header !== null && Number.isInteger(header.step) &&
    Array.isArray(header.losses) && Array.isArray(header.evals) &&
    typeof header.window === "object" &&
    Array.isArray(header.tensors) &&
    header.tensors.every((t) =>
      typeof t?.name === "string" && Number.isInteger(t?.length) && t.length >= 0
    );
  if (!ok) throw new BadStateError("malformed: header fields");
  return header;
}

/** Why bytes that do not start with this format's magic line are not an entry. */
function foreignFormat(bytes: Uint8Array): string {
  const family = new TextEncoder().encode(MAGIC.slice(0, MAGIC.indexOf("/") + 1));
  const line = bytes.subarray(0, 64).indexOf(0x0a);
  if (line > 0 && family.every((b, i) => bytes[i] === b)) {
    const found = new TextDecoder().decode(bytes.subarray(0, line));
    return `format ${found}, not ${MAGIC.trim()}`;
  }
  return `not a ${MAGIC.trim()} entry`;
}

/** The length a damaged entry's header declares, or 0 where its header cannot be read. */
function declaredLength(bytes: Uint8Array, magicLength: number): number {
  try {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const headEnd = magicLength + 4 + view.getUint32(magicLength, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(magicLength + 4, headEnd)));
    const lengths = (header.tensors as { length: number }[]).map((t) => t.length * 4);
    return Math.ceil(headEnd / 4) * 4 + lengths.reduce((a, b) => a + b, 0) + DIGEST_BYTES;
  } catch {
    return 0;
  }
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
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

  /**
   * The entry of `key` and `kind`, or undefined when there is none or it cannot be trusted: an
   * entry that cannot be read, is of another format, truncated, or fails its checksum is named
   * in one line through `warn` and removed, so that the caller rebuilds it. Throws only when
   * such an entry cannot be removed.
   */
  load(
    key: string,
    kind: "final" | "checkpoint",
    warn: (message: string) => void,
  ): TrainState | undefined {
    const path = this.#path(key, kind);
    let bytes: Uint8Array | undefined;
    let reason = "";
    try {
      bytes = Deno.readFileSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      // Permission denied, a directory in its place, an I/O error: a bad entry like any other.
      reason = `unreadable: ${(e as Error).name}`;
    }
    if (bytes) {
      try {
        return decodeState(bytes).state;
      } catch (e) {
        if (!(e instanceof BadStateError)) throw e;
        reason = e.reason;
      }
    }
    warn(`cache: discarding ${path} (${reason}); retraining`);
    try {
      // recursive: an entry path that is a directory (unreadable) goes too.
      Deno.removeSync(path, { recursive: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return undefined;
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
