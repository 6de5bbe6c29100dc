import { describe, expect, it } from "vitest";
import { DecryptError, ProvisioningError } from "../../src/crypto/errors";
import {
  ProvisioningKeyPair,
  buildProvisioningUri,
  deriveKeys,
  encryptProvisionWith,
  padPlaintext,
  parseProvisioningUri,
  provisionMessageFromJson,
  provisionMessageToJson,
} from "../../src/crypto/provisioning";
import { hexdecode, hexencode, utf8decode, utf8encode } from "../../src/protocol/codec";
import { CRYPTO, type Vector } from "../vectors";

const messageOf = (v: Vector) => ({
  accountId: v.message.account_id,
  masterSeed: hexdecode(v.message.master_seed_hex),
  phone: v.message.phone,
  username: v.message.username,
  provisioningCode: v.message.provisioning_code,
  primaryDeviceId: v.message.primary_device_id,
});

describe("crypto.json provisioning vectors (X25519, HKDF, AES-CBC, HMAC on WebCrypto)", () => {
  it.each(CRYPTO.provisioning!)("provisioning $channel_id", async (v) => {
    const fresh = await ProvisioningKeyPair.fromPrivateBytes(hexdecode(v.new_device_private_hex));
    const eph = await ProvisioningKeyPair.fromPrivateBytes(hexdecode(v.ephemeral_private_hex));
    expect(hexencode(fresh.publicBytes)).toBe(v.new_device_public_hex);
    expect(hexencode(eph.publicBytes)).toBe(v.ephemeral_public_hex);
    const [aes, mac] = await deriveKeys(
      hexdecode(v.shared_secret_hex),
      fresh.publicBytes,
      eph.publicBytes,
    );
    expect([hexencode(aes), hexencode(mac)]).toEqual([v.aes_key_hex, v.mac_key_hex]);
    const json = provisionMessageToJson(messageOf(v));
    expect(utf8decode(json)).toBe(v.json);
    const padded = padPlaintext(json);
    expect(padded.length).toBe(v.padded_length);
    const envelope = await encryptProvisionWith(
      padded,
      fresh.publicBytes,
      eph,
      hexdecode(v.iv_hex),
    );
    expect(hexencode(envelope)).toBe(v.envelope_hex);
    expect(await fresh.decrypt(hexdecode(v.envelope_hex))).toEqual(messageOf(v));
    expect(buildProvisioningUri(v.channel_id, fresh.publicBytes)).toBe(v.uri);
    const uri = parseProvisioningUri(v.uri);
    expect([uri.channelId, hexencode(uri.publicKey), uri.name]).toEqual([
      v.channel_id,
      v.new_device_public_hex,
      null,
    ]);
  });
});

describe("the provisioning envelope refuses what it must", () => {
  const v = CRYPTO.provisioning![0]!;
  const envelope = hexdecode(v.envelope_hex);
  const fresh = () => ProvisioningKeyPair.fromPrivateBytes(hexdecode(v.new_device_private_hex));

  it("any changed byte, a wrong key and a wrong length are decrypt_failed", async () => {
    const device = await fresh();
    for (const at of [1, 33, 49, envelope.length - 1]) {
      const bent = envelope.slice();
      bent[at]! ^= 1;
      await expect(device.decrypt(bent)).rejects.toThrow(DecryptError);
    }
    const other = await ProvisioningKeyPair.generate();
    await expect(other.decrypt(envelope)).rejects.toMatchObject({ code: "decrypt_failed" });
    await expect(device.decrypt(envelope.slice(0, 64))).rejects.toThrow(DecryptError);
    await expect(device.decrypt(envelope.slice(0, envelope.length - 1))).rejects.toThrow(
      DecryptError,
    );
  });

  it("another envelope version is unsupported_version before the MAC", async () => {
    const bent = envelope.slice();
    bent[0] = 2;
    await expect((await fresh()).decrypt(bent)).rejects.toMatchObject({
      code: "unsupported_version",
    });
  });

  it("a low-order public key fails the agreement, not with a zero key", async () => {
    const bent = envelope.slice();
    bent.fill(0, 1, 33); // the all-zero point
    await expect((await fresh()).decrypt(bent)).rejects.toThrow(DecryptError);
  });

  it("a generated pair round-trips a message without a username", async () => {
    const device = await ProvisioningKeyPair.generate();
    const eph = await ProvisioningKeyPair.generate();
    const message = { ...messageOf(v), username: null, primaryDeviceId: 2 ** 31 - 1 };
    const padded = padPlaintext(provisionMessageToJson(message));
    const iv = globalThis.crypto.getRandomValues(new Uint8Array(16));
    const sealed = await encryptProvisionWith(padded, device.publicBytes, eph, iv);
    expect(sealed.length).toBe(609); // every v1 envelope, whatever the fields
    expect(await device.decrypt(sealed)).toEqual(message);
  });
});

describe("the provision message", () => {
  const good = JSON.parse(CRYPTO.provisioning![0]!.json) as Record<string, unknown>;
  const parse = (o: unknown) => provisionMessageFromJson(utf8encode(JSON.stringify(o)));

  it("refuses each malformed field and another version", () => {
    const cases: Array<Record<string, unknown>> = [
      { account_id: "B7F3C2A0-0000-4000-8000-00000000BEEF" },
      { master_seed: "AAEC" },
      { phone: "4155550100" },
      { username: "Al" },
      { provisioning_code: "has space" },
      { primary_device_id: 0 },
      { primary_device_id: 2 ** 31 },
      { primary_device_id: "1" },
    ];
    for (const change of cases) {
      expect(() => parse({ ...good, ...change }), JSON.stringify(change)).toThrow(
        ProvisioningError,
      );
    }
    const { phone: _phone, ...noPhone } = good;
    expect(() => parse(noPhone)).toThrow(/lacks phone/);
    expect(() => parse({ ...good, v: 2 })).toThrow(
      expect.objectContaining({ code: "unsupported_version" }),
    );
    expect(() => parse([good])).toThrow(ProvisioningError);
    expect(parse({ ...good, extra: true }).accountId).toBe(good.account_id);
  });
});

describe("the porch://link URI", () => {
  const v = CRYPTO.provisioning![0]!;
  const key = hexdecode(v.new_device_public_hex);

  it("carries a cleaned name that the parser accepts", () => {
    const uri = buildProvisioningUri(
      v.channel_id,
      key,
      "  My browser\u0007 on a laptop that is long ",
    );
    expect(uri).toBe(`${v.uri}&name=My+browser+on+a+laptop+that+is+l`);
    expect(parseProvisioningUri(uri).name).toBe("My browser on a laptop that is l");
  });

  it("refuses what provisioning.py refuses", () => {
    const bad = [
      v.uri.replace("porch://", "sgnl://"),
      v.uri.replace("link?", "linkdevice?"),
      `${v.uri}#x`,
      `${v.uri}&v=1`,
      v.uri.replace("&v=1", ""),
      v.uri.replace("&v=1", "&v=01"),
      v.uri.replace("uuid=1b4e", "uuid=1B4E"),
      v.uri.replace("IK08", "IK09"), // non-canonical last character
      v.uri.replace("IK08", "IK0"),
      `${v.uri}&a=1&b=2&c=3&d=4&e=5&f=6`,
      `${v.uri}&flag`,
      `${v.uri}&name=${"x".repeat(33)}`,
      `${v.uri}&name=%20x`,
      `${v.uri}&x=${"y".repeat(512)}`,
      `${v.uri}&x=é`,
    ];
    for (const text of bad) {
      expect(() => parseProvisioningUri(text), text).toThrow(
        expect.objectContaining({ code: "bad_provisioning" }),
      );
    }
    expect(() => parseProvisioningUri(v.uri.replace("v=1", "v=2"))).toThrow(
      expect.objectContaining({ code: "unsupported_version" }),
    );
    expect(parseProvisioningUri(`${v.uri}&future=1`).channelId).toBe(v.channel_id);
  });
});
