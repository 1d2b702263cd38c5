import { assert, assertThrows } from "@std/assert";
import { npmPackageFile } from "./npm_files.ts";

Deno.test("npmPackageFile() finds fonts and UMD builds that the packages do not export", () => {
  for (
    const [pkg, file] of [
      ["dejavu-fonts-ttf", "ttf/DejaVuSans.ttf"],
      ["vega", "build/vega.min.js"],
      ["vega-lite", "build/vega-lite.min.js"],
      ["vega-embed", "build/vega-embed.min.js"],
    ]
  ) {
    assert(Deno.statSync(npmPackageFile(pkg, file)).isFile, `${pkg}/${file}`);
  }
});

Deno.test("npmPackageFile() throws for a package outside the import map", () => {
  assertThrows(() => npmPackageFile("no-such-package", "x"));
});
