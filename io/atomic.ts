/**
 * Atomic file writes: a reader sees either the old file or the complete new one, never a
 * half-written file. Reports are rewritten while a browser or another process may read them, and
 * trained models and checkpoints while a later run may load them (`runner/model_cache.ts`).
 * @module
 */

/**
 * Writes `data` to `path` atomically: first to `<path>.tmp-<pid>` in the same directory, then
 * renamed over `path` (a rename within one file system is atomic). The parent directory must
 * exist. On failure the temporary file is removed and the error rethrown.
 *
 * @example
 * ```ts ignore
 * await writeFileAtomic("out/REPORT.md", "# Report\n");
 * ```
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
