// Frame types from docs/protocol.schema.json (which src/porch/protocol/schema.py exports from
// the Python models), so the browser client and the server share one definition of the wire.
// `npm run gen` writes src/protocol/frames.gen.ts; test/frames.test.ts regenerates in memory
// and fails when the committed file is stale.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { compile } from "json-schema-to-typescript";

export const SCHEMA_PATH = fileURLToPath(
  new URL("../../docs/protocol.schema.json", import.meta.url),
);
export const OUTPUT_PATH = fileURLToPath(new URL("../src/protocol/frames.gen.ts", import.meta.url));

const BANNER = `/* Generated from docs/protocol.schema.json by \`npm run gen\` (web/scripts/gen-frames.mjs);
 * do not edit. Regenerate after \`python -m porch.protocol.schema\`. */`;

// pydantic titles every property ("Type", "Account"...), which json-schema-to-typescript turns
// into hundreds of numbered aliases (Type1, Type2...); without them the fields are inlined.
function dropPropertyTitles(node) {
  if (Array.isArray(node)) {
    node.forEach(dropPropertyTitles);
  } else if (node && typeof node === "object") {
    if (node.properties && typeof node.properties === "object") {
      for (const prop of Object.values(node.properties)) delete prop.title;
    }
    Object.values(node).forEach(dropPropertyTitles);
  }
}

export async function generateFrames() {
  const schema = JSON.parse(await readFile(SCHEMA_PATH, "utf8"));
  dropPropertyTitles(schema);
  return compile(schema, "PorchFrame", {
    bannerComment: BANNER,
    additionalProperties: false,
    unreachableDefinitions: true,
    // The schema's $refs are all local (#/$defs/...): never touch the file system or network.
    $refOptions: { resolve: { external: false } },
    style: { printWidth: 100 },
  });
}
