"""What happens to messages after they are sent: unsubscribes, opens, clicks, provider callbacks
(delivered, bounced, complained) and inbound SMS keywords. Each updates the message record and
becomes an event on the profile, so flows and conditions can use it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Literal

from storeflow.clock import Clock
from storeflow.engine.dispatcher import message_event
from storeflow.errors import NotFoundError
from storeflow.signing import Signer
from storeflow.store.base import Store

ProviderEvent = Literal["delivered", "bounced", "complained", "failed"]
_EVENT_TYPES = {"delivered": "message_delivered", "bounced": "message_bounced",
                "complained": "message_complained", "failed": "message_bounced"}


class MessageService:
    def __init__(self, store: Store, clock: Clock, signer: Signer,
                 ingest: Callable[[Sequence[dict[str, Any]]], Any]) -> None:
        self.store, self.clock, self.signer, self._ingest = store, clock, signer, ingest

    def _message(self, message_id: str) -> dict[str, Any]:
        with self.store.read() as tx:
            row = tx.get_message(message_id)
        if row is None:
            raise NotFoundError(f"message {message_id!r} does not exist")
        return row

    def get(self, message_id: str) -> dict[str, Any]:
        row = self._message(message_id)
        with self.store.read() as tx:
            row["attempts_log"] = tx.attempts_of(message_id)
        return row

    # -- links in messages ---------------------------------------------------------------------
    def unsubscribe_target(self, token: str) -> dict[str, Any]:
        """Who a valid unsubscribe token is for (channel, masked address), without acting."""
        data = self.signer.verify("unsubscribe", token)
        message = self._message(str(data["m"]))
        return {"channel": data.get("c", "email"), "address": _mask(message.get("address") or "")}

    def unsubscribe(self, token: str) -> dict[str, Any]:
        data = self.signer.verify("unsubscribe", token)
        message = self._message(str(data["m"]))
        channel = str(data.get("c", "email"))
        if message.get("profile_id"):
            self._ingest([{"type": "unsubscribed", "id": f"{message['id']}:unsubscribed",
                           "profile_id": message["profile_id"], "source": "storeflow",
                           "properties": {"channel": channel, "message_id": message["id"],
                                          "flow_id": message.get("flow_id")}}])
        return {"channel": channel, "address": _mask(message.get("address") or "")}

    def record_open(self, token: str) -> None:
        data = self.signer.verify("open", token)
        message = self._message(str(data["m"]))
        now = self.clock.now()
        with self.store.transaction() as tx:
            if message.get("opened_at") is None:
                tx.update_message(message["id"], opened_at=now)
        if message.get("profile_id"):
            self._ingest([message_event(message, "message_opened")])

    def record_click(self, token: str) -> str:
        """Record the click and return where to send the browser (only the URL inside the token)."""
        data = self.signer.verify("click", token)
        url = str(data["u"])
        message = self._message(str(data["m"]))
        now = self.clock.now()
        with self.store.transaction() as tx:
            if message.get("clicked_at") is None:
                tx.update_message(message["id"], clicked_at=now)
        if message.get("profile_id"):
            digest = hashlib.sha256(url.encode()).hexdigest()[:12]
            self._ingest([message_event(message, "message_clicked", url=url, key_suffix=f":{digest}")])
        return url

    # -- provider callbacks --------------------------------------------------------------------
    def provider_event(self, event: ProviderEvent, *, message_id: str | None = None,
                       provider_id: str | None = None, reason: str | None = None) -> dict[str, Any]:
        now = self.clock.now()
        with self.store.transaction() as tx:
            row = tx.get_message(message_id) if message_id else (
                tx.message_by_provider_id(provider_id) if provider_id else None)
            if row is None:
                which = f"id {message_id}" if message_id else f"provider id {provider_id}"
                raise NotFoundError(f"no message with {which}")
            values: dict[str, Any] = {"updated_at": now}
            if event == "delivered":
                values.update(status="delivered", delivered_at=now)
            else:
                values.update(status="bounced" if event in ("bounced", "failed") else "complained",
                              last_error=reason or event)
                if row.get("address") and event in ("bounced", "complained"):
                    tx.suppress(row["channel"], row["address"], event, now, row["id"])
            tx.update_message(row["id"], **values)
        if row.get("profile_id") and row.get("kind") in ("marketing", "transactional"):
            self._ingest([message_event(row, _EVENT_TYPES[event], **({"reason": reason} if reason else {}))])
        return {"message_id": row["id"], "status": values["status"]}

    def sms_keyword(self, phone: str, keyword: Literal["stop", "start", "help"]) -> str | None:
        """Apply an inbound keyword from a phone number; returns the consent change, if any."""
        if keyword == "help":
            return None
        event = "unsubscribed" if keyword == "stop" else "subscribed"
        stamp = self.clock.now().isoformat()
        self._ingest([{"type": event, "id": f"sms-{keyword}:{phone}:{stamp}", "phone": phone,
                       "source": "sms", "properties": {"channel": "sms", "via": "inbound keyword"}}])
        return event


def _mask(address: str) -> str:
    local, sep, domain = address.partition("@")
    if not sep:
        return address[:3] + "…" if len(address) > 3 else address
    return f"{local[:1]}…@{domain}"
