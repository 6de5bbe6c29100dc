/**
 * What the chat's bubbles and composer do for rich messages, wired to the core
 * (core/rich_send.ts) and the media transfers (net/media.ts). Every core call goes through
 * `runner.serial`, as the app's own calls do; the actions that come back are performed.
 */

import type { Action } from "../core/actions";
import type { Event as CoreEvent } from "../core/events";
import * as rich from "../core/rich_send";
import type { StoredMessage } from "../core/types";
import type { Attachment } from "../crypto/rich";
import { MediaTransfers } from "../net/media";
import { prepare } from "../net/media_prep";
import type { Runner } from "../net/runner";
import type { HttpApi } from "../net/http";
import { MediaView } from "./message_media";

export interface RichChat {
  me: string;
  media: MediaView;
  send(body: string, reply: StoredMessage | null): Promise<void>;
  sendFiles(
    files: File[],
    caption: string,
    reply: StoredMessage | null,
    progress: (fraction: number) => void,
  ): Promise<void>;
  react(m: StoredMessage, emoji: string): Promise<void>;
  edit(m: StoredMessage, body: string): Promise<void>;
  remove(m: StoredMessage): Promise<void>;
  setTimer(seconds: number): Promise<void>;
  timer(): Promise<number>;
  preview(m: StoredMessage): string;
  /** Delete what expired; true when something went. */
  sweep(): Promise<boolean>;
}

export interface RichChatDeps {
  peer: string;
  runner: () => Runner;
  api: HttpApi;
  perform(actions: Action[]): void;
  changed(): void; // history changed: re-render
  emit?(event: CoreEvent): void;
}

export function richChat(deps: RichChatDeps): RichChat {
  const { peer } = deps;
  const core = () => deps.runner().core;
  const serial = <T>(fn: () => Promise<T>) => deps.runner().serial(fn);
  const done = (sent: rich.Sent) => {
    deps.perform(sent.actions);
    if (sent.event) deps.emit?.(sent.event);
    deps.changed();
  };
  const transfers = new MediaTransfers(deps.api);
  const media = new MediaView(transfers, () => deps.changed());
  const quote = (m: StoredMessage | null) => (m ? rich.quoteOf(core().state, m) : undefined);
  const extras = (reply: StoredMessage | null, attachments?: Attachment[]) => {
    const out: { reply?: ReturnType<typeof rich.quoteOf>; attachments?: Attachment[] } = {};
    const q = quote(reply);
    if (q) out.reply = q;
    if (attachments) out.attachments = attachments;
    return out;
  };
  return {
    me: core().state.accountId,
    media,
    async send(body, reply) {
      done(await serial(() => rich.sendText(core().state, peer, body, extras(reply))));
    },
    async sendFiles(files, caption, reply, progress) {
      const state = core().state;
      // A group's pointer (with its key) goes inside the Megolm text, as Python's does.
      const devices = await serial(() => rich.mediaRecipients(state, peer));
      const attachments: Attachment[] = [];
      for (const [i, file] of files.entries()) {
        const prepared = await prepare(file);
        const share = (f: number) => progress((i + f) / files.length);
        const up = await transfers.upload(prepared.data, devices, share);
        const pointer: Attachment = {
          id: up.id,
          key: up.key,
          digest: up.digest,
          size: prepared.data.size,
          contentType: prepared.contentType,
          name: prepared.name,
        };
        if (prepared.width) pointer.width = prepared.width;
        if (prepared.height) pointer.height = prepared.height;
        if (prepared.thumbnail) pointer.thumbnail = prepared.thumbnail;
        if (prepared.blurhash) pointer.blurhash = prepared.blurhash;
        attachments.push(pointer);
      }
      progress(1);
      done(await serial(() => rich.sendText(state, peer, caption, extras(reply, attachments))));
    },
    async react(m, emoji) {
      done(await serial(() => rich.react(core().state, peer, m, emoji)));
    },
    async edit(m, body) {
      done(await serial(() => rich.edit(core().state, peer, m, body)));
    },
    async remove(m) {
      done(await serial(() => rich.deleteForEveryone(core().state, peer, m)));
    },
    async setTimer(seconds) {
      done(await serial(() => rich.setTimer(core().state, peer, seconds)));
    },
    async timer() {
      return (await core().state.store.timer(peer))?.seconds ?? 0;
    },
    preview(m) {
      return rich.preview(m);
    },
    async sweep() {
      const gone = await serial(() => rich.expireNow(core().state));
      for (const event of gone) deps.emit?.(event);
      deps.changed(); // off the screen now even if the sweep found it gone already
      return gone.length > 0;
    },
  };
}
