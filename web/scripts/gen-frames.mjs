// `npm run gen`: write src/protocol/frames.gen.ts from docs/protocol.schema.json.
import { writeFile } from "node:fs/promises";
import { OUTPUT_PATH, generateFrames } from "./frames.mjs";

await writeFile(OUTPUT_PATH, await generateFrames(), "utf8");
console.log(`wrote ${OUTPUT_PATH}`);
