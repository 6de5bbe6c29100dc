// Groups (wgroups) meet one's own other devices (wlink): in a group, the account's other
// devices are members and get the group message itself, never a `sent` copy; the outbox's
// own-device listing (for 1:1 sent copies) must not hold a group send up.
import { describe, expect, it } from "vitest";
import type { Action } from "../../src/core/actions";
import type { ServerGroup } from "../../src/core/group_sync";
import { ClientCore } from "../../src/core/state";
import { DEFAULT_SETTINGS, sealGroupState } from "../../src/crypto/group_state";
import { loadOlm } from "../../src/crypto/olm_raw";
import { b64decode } from "../../src/protocol/codec";
import type { SendFrame } from "../../src/protocol/frames.gen";
import { accountBundle, makeDevice, type Device } from "./helpers";

const ALICE = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const BOB = "b7f3c2a0-0000-4000-8000-00000000beef";
const GID = "9a9a9a9a-1111-4222-8333-444444444444";

/** Prepare the next outbox item of `core`, answering every claim (one at a time, as the
 * runner does) from the accounts' devices; the claims seen and the frames made. */
async function pass(core: ClientCore, accounts: Record<string, Device[]>) {
  const [item] = await core.nextOutboxItems();
  let pending = await core.prepare(item!);
  const claims = [];
  const frames: SendFrame[] = [];
  for (let round = 0; round < 10 && pending.length; round++) {
    const next: Action[] = [];
    for (const action of pending) {
      if (action.type === "SendFrame") frames.push(action.frame as SendFrame);
      if (action.type !== "ClaimKeys") continue;
      claims.push(action);
      // A listing shows the devices; a claim takes a one-time key of each device it names
      // (devices null: every device of the account).
      const devices = accounts[action.account]!;
      const claimed = action.devices ?? devices.map((d) => d.deviceId);
      const bundle = await accountBundle(devices, action.listing ? null : [...claimed]);
      next.push(...(await core.keysClaimed(action, bundle)));
    }
    pending = next;
  }
  return { item: item!, claims, frames };
}

async function group(core: ClientCore): Promise<ServerGroup> {
  const key = await core.groups!.crypto.newStateKey(GID);
  const state = { name: "Both", description: "", avatar: null, timerSeconds: 0 };
  const blob = await sealGroupState(b64decode(key.key), GID, 1, key.epoch, {
    ...state,
    settings: DEFAULT_SETTINGS,
  });
  return {
    id: GID,
    revision: 1,
    state: blob,
    stateRevision: 1,
    settings: DEFAULT_SETTINGS,
    members: [
      { account: ALICE, role: "admin" },
      { account: BOB, role: "member" },
    ],
    pending: [],
    invite: false,
  };
}

describe("a group send from a browser with another device on its account", () => {
  it("goes to one's own other device as a member, without a listing claim, after a reload", async () => {
    const term = await makeDevice(ALICE, 1);
    const web = await makeDevice(ALICE, 2, term.master);
    const bob = await makeDevice(BOB, 1);
    const accounts = { [ALICE]: [term, web], [BOB]: [bob] };

    // A 1:1 text first: its sent copy lists Alice's devices and starts a session with term.
    await web.core.sendText(BOB, "one to one");
    const first = await pass(web.core, accounts);
    expect(first.claims.some((c) => c.listing)).toBe(true);
    expect(first.frames[0]!.destinations.map((d) => d.account)).toEqual([BOB, ALICE]);

    await web.core.receive({ type: "sent", id: first.item.clientId, ts: 1 });

    // A reload: a new core over the same store; it has not listed its own devices yet.
    const core = new ClientCore(web.store, web.olm, ALICE, 2);
    core.enableGroups(await loadOlm(), new Uint8Array(32).fill(7));
    await core.groupFetched(await group(core));
    const { clientId } = await core.sendText(`g:${GID}`, "to the group");
    const sent = await pass(core, accounts);

    expect(sent.claims.filter((c) => c.listing)).toEqual([]);
    const message = sent.frames.find((f) => f.id === clientId);
    expect(message?.shared?.kind).toBe(2);
    expect(message!.destinations.map((d) => [d.account, d.devices.map((m) => m.device)])).toEqual(
      expect.arrayContaining([
        [BOB, [1]],
        [ALICE, [1]], // term, a member device: never this one
      ]),
    );
  });
});
