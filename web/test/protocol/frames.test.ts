import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { OUTPUT_PATH, generateFrames } from "../../scripts/frames.mjs";
import type { ClientFrame, ErrorCode, SendFrame, ServerFrame } from "../../src/protocol/frames.gen";

describe("frame types generated from docs/protocol.schema.json", () => {
  it("are up to date (run `npm run gen` after `python -m porch.protocol.schema`)", async () => {
    const committed = await readFile(OUTPUT_PATH, "utf8");
    const fresh = await generateFrames();
    expect(
      committed === fresh,
      "web/src/protocol/frames.gen.ts is stale: run `npm run gen` in web/",
    ).toBe(true);
  });

  it("describe the frames the server speaks", () => {
    // Compile-time checks that also run: a wrong field name or type fails `tsc --noEmit`.
    const send: SendFrame = {
      type: "send",
      id: "m-1",
      destinations: [
        {
          account: "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
          devices: [{ device: 1, registration: 7, kind: 0, body: "AAAA" }],
        },
      ],
      ttl: 60,
    };
    const frames: Array<ClientFrame | ServerFrame> = [send, { type: "ping" }];
    const code: ErrorCode = "stale_devices";
    expect(frames.map((f) => f.type)).toEqual(["send", "ping"]);
    expect(code).toBe("stale_devices");
  });
});
