/**
 * A cache that cannot lie (issue 15): every way an entry goes bad on disk is named in one warning,
 * the entry removed, and the model retrained to the same bits as a fresh training. The kinds of
 * bad entry are listed once here and checked at each layer: `decodeState`, `ModelCache.load`
 * (final entries and checkpoints) and `trainCached`.
 * @module
 */
import { assertEquals, assertThrows } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import { crossEntropy, linear } from "../onnx/nn.ts";
import { ADAMW_DEFAULTS } from "../onnx/optim.ts";
import { tensor } from "../onnx/runtime.ts";
import { openEngine } from "./engine.ts";
import { BadStateError, cacheKey, decodeState, encodeState, ModelCache } from "./model_cache.ts";
import { Progress } from "./progress.ts";
import { initialState, type TrainState } from "./trainer.ts";
import { trainCached, type TrainContext, type TrainJob } from "./training.ts";

/** A bad entry made from a good one's bytes, and the reason its warning gives. */
interface BadEntry {
  name: string;
  bytes: Uint8Array;
  reason: string;
}

/** The byte offset of `text` in `bytes` (it must occur). */
function offsetOf(bytes: Uint8Array, text: string): number {
  const at = new TextDecoder("latin1").decode(bytes).indexOf(text);
  if (at < 0) throw new Error(`${JSON.stringify(text)} is not in the entry`);
  return at;
}

/** Every content fault, made from the bytes of a good entry whose header logs a loss. */
function badEntries(good: Uint8Array): BadEntry[] {
  const n = good.length;
  const flipped = (at: number) => {
    const bytes = good.slice();
    bytes[at] ^= 0x01;
    return bytes;
  };
  // Format 1 had the same layout without the SHA-256 trailer.
  const v1 = good.slice(0, n - 32);
  v1[offsetOf(good, "/2\n") + 1] = "1".charCodeAt(0);
  return [
    {
      name: "truncated",
      bytes: good.slice(0, n - 10),
      reason: `truncated: ${n - 10} of ${n} bytes`,
    },
    // The last tensor's last float, just before the 32-byte trailer.
    { name: "a flipped tensor byte", bytes: flipped(n - 33), reason: "checksum mismatch" },
    // The first digit of the first logged loss: still valid JSON, so only the checksum tells.
    {
      name: "a flipped metric byte",
      bytes: flipped(offsetOf(good, '"loss":') + 7),
      reason: "checksum mismatch",
    },
    {
      name: "garbage",
      bytes: Uint8Array.from({ length: 200 }, (_, i) => (i * 151 + 7) % 256),
      reason: "not a claimbench-state/2 entry",
    },
    {
      name: "the old format",
      bytes: v1,
      reason: "format claimbench-state/1, not claimbench-state/2",
    },
  ];
}

/**
 * Makes `path` unreadable and returns the reason its warning gives. chmod 000 stops any user but
 * root, so where it still reads (tests running as root) the entry becomes a directory instead.
 */
function makeUnreadable(path: string): string {
  Deno.chmodSync(path, 0o000);
  try {
    Deno.readFileSync(path);
  } catch {
    return "unreadable: PermissionDenied";
  }
  Deno.removeSync(path);
  Deno.mkdirSync(path);
  return "unreadable: IsADirectory";
}

/** Writes each bad entry to `path` in turn, with `check(reason)` run after each. */
async function eachBadEntry(
  good: Uint8Array,
  path: string,
  check: (name: string, reason: string) => Promise<void> | void,
): Promise<void> {
  for (const bad of badEntries(good)) {
    Deno.writeFileSync(path, bad.bytes);
    await check(bad.name, bad.reason);
  }
  Deno.writeFileSync(path, good);
  await check("unreadable", makeUnreadable(path));
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function sample(): TrainState {
  const s = initialState([
    { name: "w", shape: [2, 3], init: Float32Array.from([1, 2, 3, 4, 5, 6]), decay: true },
  ]);
  s.step = 12;
  s.losses.push({ step: 10, loss: 0.5 });
  s.evals.push({ step: 12, metrics: { err: 0.25 } });
  s.window = { sum: 1.5, count: 2 };
  return s;
}

Deno.test("decodeState rejects each kind of bad entry with its reason", () => {
  const good = encodeState(sample(), { label: "x" });
  for (const bad of badEntries(good)) {
    const e = assertThrows(() => decodeState(bad.bytes), BadStateError);
    assertEquals([bad.name, e.reason], [bad.name, bad.reason]);
  }
  assertEquals(decodeState(good).state, sample());
});

Deno.test("ModelCache.load names each bad entry in one warning, removes it and returns undefined", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cache = new ModelCache(dir);
    for (const [kind, ext] of [["final", "state"], ["checkpoint", "ckpt"]] as const) {
      await cache.save("k", kind, sample(), { label: "x" });
      const path = `${dir}/k.${ext}`;
      const good = Deno.readFileSync(path);
      await eachBadEntry(good, path, (name, reason) => {
        const warnings: string[] = [];
        assertEquals([name, cache.load("k", kind, (m) => warnings.push(m))], [name, undefined]);
        assertEquals(warnings, [`cache: discarding ${path} (${reason}); retraining`]);
        assertEquals([name, exists(path)], [name, false]);
      });
    }
    assertEquals([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const ENGINE = await openEngine("portable");

// A 2-class logistic regression: small enough to train in milliseconds.
function job(): TrainJob {
  const r = new Prng(5);
  const steps = 10;
  return {
    label: "logreg",
    key: { test: "bad_entries_test" },
    spec: {
      name: "logreg",
      params: [
        { name: "w", shape: [4, 2], init: new Float32Array(8).map(() => r.normal()), decay: true },
        { name: "b", shape: [2], init: new Float32Array(2), decay: false },
      ],
      batch: [
        { name: "x", dtype: "float32", shape: [8, 4] },
        { name: "y", dtype: "int32", shape: [8] },
      ],
      loss: (p, b) => crossEntropy(linear(b.x, p.w, p.b), b.y),
      optimizer: ADAMW_DEFAULTS,
    },
    steps,
    schedule: { lr: 0.05, warmupSteps: 2, totalSteps: steps },
    batch: (step) => {
      const b = new Prng(200 + step);
      const x = new Float32Array(32).map(() => b.normal());
      const y = new Int32Array(8).map((_, i) => (x[i * 4] > 0 ? 1 : 0));
      return { x: tensor("float32", x, [8, 4]), y: tensor("int32", y, [8]) };
    },
  };
}

function context(cacheDir: string, log: (message: string) => void): TrainContext {
  return {
    engine: ENGINE,
    threads: 1,
    fresh: false,
    cacheDir,
    progress: (label, total) => new Progress(label, total, { write: () => {} }),
    log,
  };
}

/** Every bit of a trained state: its tensors, step, losses, evals and window. */
const bits = (state: TrainState) => encodeState(state, null);

Deno.test("trainCached retrains over each bad entry, to the bits of a fresh training", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fresh = await trainCached(context(`${dir}/fresh`, () => {}), job());
    const key = cacheKey({ job: job().key, steps: job().steps, engine: ENGINE.version });
    const good = Deno.readFileSync(`${dir}/fresh/${key}.state`);
    for (const [kind, ext] of [["final", "state"], ["checkpoint", "ckpt"]] as const) {
      const path = `${dir}/${kind}/${key}.${ext}`;
      Deno.mkdirSync(`${dir}/${kind}`);
      await eachBadEntry(good, path, async (name, reason) => {
        const logs: string[] = [];
        const model = await trainCached(context(`${dir}/${kind}`, (m) => logs.push(m)), job());
        assertEquals([name, model.cached, logs], [name, false, [
          `cache: discarding ${path} (${reason}); retraining`,
        ]]);
        assertEquals(bits(model.state), bits(fresh.state));
        const again = await trainCached(context(`${dir}/${kind}`, (m) => logs.push(m)), job());
        assertEquals([again.cached, logs.length], [true, 1]);
        Deno.removeSync(`${dir}/${kind}/${key}.state`);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
