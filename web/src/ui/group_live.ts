/**
 * A group chat's disappearing timer control (ui/chat.ts `TimerControl`), wired to the sealed
 * state change of net/group_timer.ts and the expiry of core/rich_send.ts. Every core call goes
 * through `runner.serial`, as the app's own calls do.
 */

import type { Action } from "../core/actions";
import { groupTimer } from "../core/group_live";
import { expireNow } from "../core/rich_send";
import type { GroupApi } from "../net/group_api";
import { setGroupTimer } from "../net/group_timer";
import type { Runner } from "../net/runner";
import type { TimerControl } from "./chat";

/** `changed`: the history changed (re-render). */
export function groupTimerControl(
  groupId: string,
  api: GroupApi,
  parts: { runner: () => Runner; perform(actions: Action[]): void },
  changed: () => Promise<void>,
): TimerControl {
  const core = () => parts.runner().core;
  return {
    async setTimer(seconds) {
      await setGroupTimer({ api, ...parts }, groupId, seconds);
      await changed();
    },
    timer: () => groupTimer(core().state, `g:${groupId}`),
    async sweep() {
      const gone = await parts.runner().serial(() => expireNow(core().state));
      await changed(); // off the screen now even if the sweep found it gone already
      return gone.length > 0;
    },
  };
}
