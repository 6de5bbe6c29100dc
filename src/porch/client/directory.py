"""Who is who: +numbers and @usernames to account ids, and account ids back to names.

Answers come from the local contacts first (store/contacts.py); the server's directory is
asked once for what is not known yet (a lookup, or GET /v1/accounts/{id}/profile for the
public name of a sender seen for the first time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from porch.client.api import HttpApi
from porch.client.errors import ClientError, RecipientNotFound, ServerError, UsageError
from porch.client.registration import normalize_phone
from porch.client.store import LocalStore

log = logging.getLogger("porch.client")


class Directory:
    def __init__(
        self,
        store: Callable[[], LocalStore],
        api: Callable[[], HttpApi],
        me: str,
        label: Callable[[str], str],
    ) -> None:
        # Getters: the Client opens a new store and HTTP client when it is entered again.
        self._store, self._api, self._me, self._label = store, api, me, label
        self._names_tried: set[str] = set()

    async def resolve(self, to: str) -> str:
        """+NUMBER, @USERNAME or an account id -> account id (asks the directory once)."""
        to = to.strip()
        if to.startswith("+"):
            return await self._find(phone=normalize_phone(to))
        if to.startswith("@"):
            return await self._find(username=to[1:].lower())
        if len(to) == 36 and to.count("-") == 4:
            return to.lower()
        raise UsageError(
            f"{to!r} is not a +phone number, an @username or an account id (@{to}, say)"
        )

    async def _find(self, **query: str) -> str:
        store = self._store()
        found = store.find_contact(**query)
        if found:
            return found
        try:
            account_id = await self._api().lookup(**query)
        except ServerError as exc:
            if exc.code == "not_found":
                who = query.get("phone") or f"@{query.get('username')}"
                raise RecipientNotFound(
                    f"nobody on this server is {who}; check the spelling, or ask them for it"
                ) from None
            raise
        store.set_contact(account_id, **query)
        return account_id

    async def name_of(self, account_id: str) -> str:
        """@username or +number for an account, asking the server once when first seen."""
        store = self._store()
        if (
            account_id != self._me
            and account_id not in self._names_tried
            and not store.contact_named(account_id)
        ):
            self._names_tried.add(account_id)  # one try per process, even when it fails
            try:
                username, phone = await self._api().profile(account_id)
            except ClientError as exc:
                log.info("no public name for %s: %s", account_id[:8], exc.code)
            else:
                store.set_contact_name(account_id, username, phone)
        return self._label(account_id)
