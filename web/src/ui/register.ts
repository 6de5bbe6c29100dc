/**
 * Registering: phone number -> code -> name (docs/protocol.md, "Registration"). Each step
 * is one form, so Enter submits it and focus moves to the next step's field.
 */

import { ClientError } from "../core/errors";
import { HttpApi } from "../net/http";
import { type OpenProfile, USERNAME_RE, createProfile, normalizePhone } from "../net/profile";
import type { IdbStore } from "../store/idb";
import { field, form, h } from "./dom";

export function registerScreen(
  root: HTMLElement,
  store: IdbStore,
  server: string,
  done: (profile: OpenProfile) => void,
): void {
  const api = new HttpApi(server);
  const show = (el: HTMLElement) => {
    root.replaceChildren(el);
    el.querySelector("input")?.focus();
  };
  const phoneInput = h("input", {
    type: "tel",
    autocomplete: "tel",
    required: true,
    placeholder: "+14155550100",
  });
  show(
    form(
      "Register with your phone number",
      "Send code",
      [field("Phone number", phoneInput)],
      async () => {
        const phone = normalizePhone(phoneInput.value);
        const session = await api.requestCode(phone);
        codeStep(phone, session.sessionId);
      },
    ),
  );
  // Or become another device of an account a terminal already has (./link).
  const again = () => registerScreen(root, store, server, done);
  root.append(
    h(
      "p",
      { class: "alt" },
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          // Loaded on demand: the QR encoder is not in the bundle every start pays for.
          onclick: () =>
            void import("./link").then((m) => m.linkScreen(root, store, server, done, again)),
        },
        "Link to an existing account",
      ),
    ),
  );

  function codeStep(phone: string, sessionId: string, problem = ""): void {
    const codeInput = h("input", {
      inputmode: "numeric",
      autocomplete: "one-time-code",
      required: true,
      maxlength: 16,
    });
    const step = form(
      `Type the code sent to ${phone}`,
      "Verify",
      [field("Verification code", codeInput)],
      async () => {
        const code = codeInput.value.replace(/[\s-]/g, "");
        if (!/^\d{6}$/.test(code))
          throw new ClientError("the code is six digits; type it again", "usage");
        nameStep(phone, sessionId, code);
      },
    );
    step.querySelector(".error")!.textContent = problem;
    show(step);
  }

  function nameStep(phone: string, sessionId: string, code: string): void {
    const nameInput = h("input", { autocomplete: "name", maxlength: 64 });
    const userInput = h("input", {
      autocomplete: "username",
      maxlength: 33,
      placeholder: "optional",
    });
    show(
      form(
        "Name this device",
        "Finish",
        [field("Device name", nameInput), field("Username (optional)", userInput)],
        async () => {
          const username = userInput.value.trim().replace(/^@/, "").toLowerCase() || null;
          if (username && !USERNAME_RE.test(username)) {
            throw new ClientError(
              "usernames are 3-32 characters: a letter, then letters, digits or _; choose another",
              "usage",
            );
          }
          let reg;
          try {
            reg = await api.verify(sessionId, code, nameInput.value.trim() || "browser");
          } catch (exc) {
            if (exc instanceof ClientError && exc.code === "code_invalid") {
              // A wrong code asks again while the session has attempts left.
              codeStep(phone, sessionId, `${exc.message}; type the code again.`);
              return;
            }
            throw exc;
          }
          done(await createProfile(store, server, phone, reg, username));
        },
      ),
    );
  }
}
