/**
 * The JavaScript side of tests/interop/test_web_olm.py: a long-lived Node process that holds
 * libolm state and answers one JSON request per stdin line with one JSON line on stdout, so
 * the Python test can drive a conversation with vodozemac in both directions.
 *
 * Built by `npm run interop:build` into .interop/peer.js (Node cannot run TypeScript itself).
 * Binary values travel as unpadded base64, as on the wire.
 */

import { createInterface } from "node:readline";
import { decryptAttachment, encryptAttachment } from "../../src/crypto/attachment";
import {
  contentToJson,
  decodeContent,
  encodeContent,
  type Encodable,
} from "../../src/crypto/content";
import { decodeGroupMessage, encodeGroupMessage } from "../../src/crypto/group_message";
import {
  InboundGroupSession,
  OutboundGroupSession,
  groupKeyPayload,
} from "../../src/crypto/megolm";
import { OlmMachine, type PeerDevice } from "../../src/crypto/olm";
import { loadOlm } from "../../src/crypto/olm_raw";
import { b64decode, b64encode, b64urlencode } from "../../src/protocol/codec";

// Requests are the test's JSON; each handler reads the fields its op defines.
type Request = Record<string, any>;

const lib = await loadOlm();
const PICKLE_KEY = globalThis.crypto.getRandomValues(new Uint8Array(32));
const machine = OlmMachine.create(lib, PICKLE_KEY);
const inbound = new Map<string, InboundGroupSession>();
let outbound: OutboundGroupSession | null = null;
let group = "";

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";

/** Contents built in TypeScript (not decoded from Python), one of each shape. */
async function samples(): Promise<Encodable[]> {
  const photo = globalThis.crypto.getRandomValues(new Uint8Array(3000));
  const [, key, digest] = await encryptAttachment(photo);
  const id = b64urlencode(globalThis.crypto.getRandomValues(new Uint8Array(16))); // a media id
  return [
    {
      t: "text",
      id: "m-js-1",
      body: 'h\u00e9llo \u{1f44b} "q" \\ /\n\t\u0001\u007f\u2028',
      ts: Date.now(),
    },
    {
      t: "text",
      id: "m-js-2",
      body: "",
      ts: 1_700_000_000_000,
      group: "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b",
      attachments: [
        {
          id,
          key,
          digest,
          size: photo.length,
          contentType: "image/jpeg",
          name: "b\u00e9ach.jpg",
          width: 640,
          height: 480,
          thumbnail: photo.subarray(0, 100),
          blurhash: "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        },
        { id, key, digest, size: 0, contentType: "audio/ogg", durationMs: 3400, voice: true },
      ],
      reply: { id: "m-0", author: ALICE, body: "\u{1f30a}".repeat(200) },
      forwarded: true,
      expires: 86_400,
    },
    { t: "reaction", id: "m-js-2", author: ALICE, emoji: "\u2764\ufe0f", ts: 1 },
    { t: "edit", id: "m-js-1", body: "edited", ts: 2, group: "g-7f3a" },
    { t: "delete", id: "m-js-1", ts: 3 },
    { t: "timer", seconds: 0, ts: 4 },
    { t: "receipt", kind: "read", ids: ["m-1", "m-2"] },
    { t: "typing", state: "started" },
    { t: "retry", ts: 5, device: 2, id: "m-9" },
    { t: "group_update", group: "g-7f3a", revision: 3, action: "add", targets: [ALICE] },
    { t: "sent", to: ALICE, content: { t: "timer", seconds: 300, ts: 6 } },
  ];
}

async function handle(req: Request): Promise<Record<string, unknown>> {
  const peer = req.peer as PeerDevice;
  switch (req.op) {
    case "identity": {
      const [otk] = machine.generateOneTimeKeys(1);
      return { curve25519: machine.curve25519, ed25519: machine.ed25519, one_time_key: otk };
    }
    case "olm_outbound":
      machine.createOutboundSession(peer, req.identity, req.one_time_key);
      return {};
    case "olm_encrypt": {
      const { kind, body } = machine.encrypt(peer, b64decode(req.plaintext));
      return { kind, body: b64encode(body) };
    }
    case "olm_decrypt": {
      const body = b64decode(req.body);
      return {
        plaintext: b64encode(machine.decrypt(peer, req.identity, { kind: req.kind, body })),
      };
    }
    case "megolm_inbound": {
      const session = await InboundGroupSession.fromGroupKey(lib, {
        groupId: req.group,
        sessionId: req.session,
        sessionKey: req.key,
        signature: req.sig,
        senderEd25519: req.sender_ed25519,
        pickleKey: PICKLE_KEY,
      });
      inbound.set(`${req.group}|${session.sessionId}`, session);
      return {};
    }
    case "megolm_decrypt": {
      const message = decodeGroupMessage(b64decode(req.body));
      const session = inbound.get(`${message.groupId}|${message.sessionId}`);
      if (!session) throw new Error("unknown_session");
      const { plaintext, messageIndex } = session.decrypt(message.ciphertext);
      return { plaintext: b64encode(plaintext), index: messageIndex };
    }
    case "megolm_outbound": {
      group = req.group;
      outbound = OutboundGroupSession.create(lib, PICKLE_KEY, Date.now());
      const session = outbound.sessionId;
      const sig = machine.sign(groupKeyPayload(group, session));
      return { group, session, key: outbound.sessionKey(), sig };
    }
    case "megolm_encrypt": {
      if (!outbound) throw new Error("no outbound session");
      const ciphertext = outbound.encrypt(b64decode(req.plaintext));
      const body = encodeGroupMessage({
        groupId: group,
        sessionId: outbound.sessionId,
        ciphertext,
      });
      return { body: b64encode(body) };
    }
    case "attachment_encrypt": {
      const [blob, key, digest] = await encryptAttachment(b64decode(req.data));
      return { blob: b64encode(blob), key: b64encode(key), digest: b64encode(digest) };
    }
    case "attachment_decrypt": {
      const data = await decryptAttachment(
        b64decode(req.blob),
        b64decode(req.key),
        b64decode(req.digest),
        req.size,
      );
      return { data: b64encode(data) };
    }
    case "content_reencode": {
      // Decode what Python padded, then encode it again: the bytes must be Python's.
      const content = decodeContent(b64decode(req.padded));
      if (content.t === "unknown") throw new Error(`unknown content kind ${content.kind}`);
      return { json: b64encode(contentToJson(content)), padded: b64encode(encodeContent(content)) };
    }
    case "content_samples":
      return { padded: (await samples()).map((c) => b64encode(encodeContent(c))) };
    default:
      throw new Error(`unknown op ${String(req.op)}`);
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let answer: Record<string, unknown>;
  try {
    answer = { ok: true, ...(await handle(JSON.parse(line) as Request)) };
  } catch (exc) {
    const error = exc as Error & { code?: string };
    answer = { ok: false, error: error.message, code: error.code ?? null };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
