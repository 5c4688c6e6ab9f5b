/**
 * Bundles the islands for the browser and fingerprints the static files, so they can be served
 * with a one-year immutable cache. Writes static/build/manifest.json for the server.
 */
import { sha256Hex } from "../lib/secrets.ts";

const root = new URL("../", import.meta.url);
const out = new URL("static/build/", root);
await Deno.remove(out, { recursive: true }).catch(() => {});
await Deno.mkdir(out, { recursive: true });

const tmp = await Deno.makeTempDir();
const cmd = new Deno.Command(Deno.execPath(), {
  args: [
    "bundle",
    "--platform",
    "browser",
    "--minify",
    "--quiet",
    "--output",
    `${tmp}/client.js`,
    new URL("islands/client.ts", root).pathname,
  ],
  cwd: root.pathname,
});
const { code, stderr } = await cmd.output();
if (code !== 0) {
  console.error(new TextDecoder().decode(stderr));
  Deno.exit(1);
}

const manifest: Record<string, string> = {};
async function emit(name: string, ext: string, bytes: Uint8Array) {
  const hash = (await sha256Hex(new TextDecoder().decode(bytes))).slice(0, 12);
  const file = `${name}.${hash}.${ext}`;
  await Deno.writeFile(new URL(file, out), bytes);
  manifest[`${name}.${ext}`] = `/static/${file}`;
}
await emit("client", "js", await Deno.readFile(`${tmp}/client.js`));
await emit("app", "css", await Deno.readFile(new URL("static/app.css", root)));
await Deno.remove(tmp, { recursive: true });
await Deno.writeTextFile(new URL("manifest.json", out), JSON.stringify(manifest, null, 2));
console.log(`built ${Object.values(manifest).join(", ")}`);
