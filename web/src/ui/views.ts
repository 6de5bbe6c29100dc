/**
 * Screens other modules add to the shell by name, so the shell does not import them: the
 * settings screen shows "Linked devices" once a `devices` view is registered (ui/devices.ts
 * registers it: `registerView("devices", (app) => ...)`). A view returns its element and
 * what to focus; `back` returns to where it was opened from.
 */

import type { OpenProfile } from "../net/profile";
import type { IdbStore } from "../store/idb";

export interface ViewContext {
  profile: OpenProfile;
  store: IdbStore;
  back(): void;
}

export interface View {
  el: HTMLElement;
  focus(): void;
}

export type ViewFactory = (ctx: ViewContext) => View | Promise<View>;

const views = new Map<string, ViewFactory>();

export function registerView(name: string, factory: ViewFactory): void {
  views.set(name, factory);
}

export function view(name: string): ViewFactory | null {
  return views.get(name) ?? null;
}
