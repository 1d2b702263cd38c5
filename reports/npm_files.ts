/**
 * Locates files shipped inside npm packages (fonts, UMD builds) that are read as data rather than
 * imported as modules.
 * @module
 */
import { fileURLToPath } from "node:url";

/**
 * Absolute path of `relPath` inside the installed npm package `name`.
 *
 * `name` must be mapped in deno.json "imports". With `"nodeModulesDir": "auto"` Deno resolves the
 * package's entry point into `node_modules/`; the package root is the part of that path up to
 * `node_modules/<name>/`. The package's own "exports" map is bypassed, so files it does not
 * export (e.g. `build/vega.min.js`) can be found too.
 *
 * @example
 * ```ts
 * const ttf = npmPackageFile("dejavu-fonts-ttf", "ttf/DejaVuSans.ttf");
 * ```
 */
export function npmPackageFile(name: string, relPath: string): string {
  const entry = import.meta.resolve(name);
  const marker = `/node_modules/${name}/`;
  const at = entry.lastIndexOf(marker);
  if (!entry.startsWith("file:") || at < 0) {
    throw new Error(
      `Cannot locate files of npm package ${name} as it does not resolve into a node_modules ` +
        `folder (set "nodeModulesDir" in deno.json and run deno install): current value is ${entry}`,
    );
  }
  return fileURLToPath(new URL(relPath, entry.slice(0, at + marker.length)));
}
