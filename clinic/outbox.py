"""The durable outbox (docs/delivery.md): every message the bot sends is committed here
before it is sent, and marked once the channel accepted it.

A row's `origin` says what it answers: an inbox message's mid (a turn's replies), or
another key (`reminder:<appointment id>:<try>`); `(origin, seq)` is unique, so storing
the same answer twice keeps one. Rows are claimed per recipient, oldest first, under the
lease of clinic/queues.py; a failed one waits for its next try (`not_before`) with the
recipient's later ones behind it, or is kept as failed (a dead letter). Nothing here knows
Rasa or the Graph API.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, bindparam, select, text, update
from sqlalchemy.engine import Connection

from clinic import erasure_markers, reminders
from clinic.audit import hash_id
from clinic.models import INBOX_DONE, OUTBOX_FAILED, OUTBOX_PENDING, OutboxMessage
from clinic.queues import TIME, LeasedQueue, one_writer_at_a_time, settle_message

if TYPE_CHECKING:
    from clinic.delivery import InboxItem

_SQL_REPLIES_PENDING = text(
    "SELECT count(*) FROM outbox_messages WHERE recipient_id = :recipient AND status = 'pending'"
)
_SQL_INSERT_REPLY = text(
    "INSERT INTO outbox_messages (recipient_id, origin, seq, body, channel, status, attempts, "
    "lease_owner, lease_until, created_at) VALUES (:recipient, :origin, :seq, :body, :channel, "
    "'pending', :attempts, :owner, :lease_until, :now) "
    "ON CONFLICT (origin, seq) DO NOTHING RETURNING id"
).bindparams(
    bindparam("body", type_=JSON(none_as_null=True)),
    bindparam("lease_until", type_=TIME),
    bindparam("now", type_=TIME),
)
_SQL_REPLY_SENT = text(
    "UPDATE outbox_messages SET status = 'sent', body = NULL, recipient_id = :recipient, "
    "lease_until = NULL, sent_at = :now, provider_id = :provider WHERE id = :id RETURNING origin"
).bindparams(bindparam("now", type_=TIME))
_SQL_NO_TEXTS = text("UPDATE patients SET takes_texts = 0 WHERE phone = :phone")
_SQL_PACE = text("SELECT next_at FROM send_pace WHERE channel = :channel").columns(next_at=TIME)
_SQL_PACE_START = text(
    "INSERT INTO send_pace (channel, next_at) VALUES (:channel, :next_at) "
    "ON CONFLICT (channel) DO NOTHING"
).bindparams(bindparam("next_at", type_=TIME))
_SQL_PACE_TAKE = text(
    "UPDATE send_pace SET next_at = :next_at WHERE channel = :channel AND next_at = :old"
).bindparams(bindparam("next_at", type_=TIME), bindparam("old", type_=TIME))
_SQL_DELIVERY = text(
    "UPDATE outbox_messages SET delivery = :delivery WHERE provider_id = :provider RETURNING origin"
)
_SQL_DELIVERY_FAILED = text(
    "UPDATE outbox_messages SET delivery = :delivery, status = 'failed', error = :error "
    "WHERE provider_id = :provider RETURNING origin"
)
_SQL_TRIED = text("UPDATE outbox_messages SET tried_at = :now WHERE id = :id").bindparams(
    bindparam("now", type_=TIME)
)
_SQL_REPLY_FAILED = text(
    "UPDATE outbox_messages SET status = 'failed', lease_until = NULL, error = :error "
    "WHERE id = :id RETURNING origin, recipient_id"
)
# A message settled to a sender whose erasure is under way (the answer to "delete my
# data" itself) is not kept, sent or failed.
_SQL_DROP_IF_ERASED = text(
    "DELETE FROM outbox_messages WHERE id = :id AND EXISTS "
    "(SELECT 1 FROM erasure_markers WHERE sender_hash = :hash)"
)
_SQL_OWN_MESSAGE = text(
    "INSERT INTO own_messages (mid, sent_at) VALUES (:mid, :now) ON CONFLICT (mid) DO NOTHING"
).bindparams(bindparam("now", type_=TIME))


INSTAGRAM = "instagram"
SMS = "sms"


@dataclass(frozen=True)
class Reply:
    """A message to store: the channel's `message` object, `seq`-th of its `origin`; to an
    Instagram id, or (channel "sms") to a phone number, as a text."""

    recipient_id: str
    origin: str
    seq: int
    body: dict[str, Any]
    channel: str = INSTAGRAM


@dataclass(frozen=True)
class OutboxItem:
    id: int
    recipient_id: str
    body: dict[str, Any]
    attempts: int  # this claim included
    created_at: datetime
    channel: str = INSTAGRAM
    tried_at: datetime | None = None  # a text's earlier try began then (it may have gone)


@dataclass(frozen=True)
class Stored:
    leased: list[OutboxItem]  # to send now, in this order
    next_message_waits: bool  # the answered patient's next inbox message waits


class Outbox(LeasedQueue):
    model = OutboxMessage
    key = "recipient_id"
    order = ("id",)

    def store(self, replies: list[Reply], answered: InboxItem | None = None) -> Stored:
        """Commits `replies` and, when given, marks the inbox message they answer done, in
        one transaction: a turn costs one commit however many messages it sends."""
        now = self.clock()
        waits = False
        with one_writer_at_a_time(self.engine), self.engine.begin() as connection:
            if answered is not None:
                waits = settle_message(
                    connection, answered.id, answered.sender_id, INBOX_DONE, self.hash_key, now
                )
            leased = self.store_in(connection, replies, now)
        return Stored(leased, waits)

    def store_in(
        self, connection: Connection, replies: list[Reply], now: datetime, lease: bool = True
    ) -> list[OutboxItem]:
        """Stores `replies` in the caller's transaction. A recipient's are leased to this
        owner to be sent at once (with `lease`), unless an earlier message to them is
        pending: then they wait behind it, and whoever settles it sends them. Those stored
        before (same origin and seq) are kept once. The ones leased, in order."""
        busy = {
            r.recipient_id
            for r in replies
            if not lease
            or connection.execute(_SQL_REPLIES_PENDING, {"recipient": r.recipient_id}).scalar()
        }
        leased = []
        for reply in replies:
            free = reply.recipient_id not in busy
            values = {
                "recipient": reply.recipient_id,
                "origin": reply.origin,
                "seq": reply.seq,
                "body": reply.body,
                "channel": reply.channel,
                "attempts": 1 if free else 0,
                "owner": self.owner if free else None,
                "lease_until": now + self.lease if free else None,
                "now": now,
            }
            reply_id = connection.execute(_SQL_INSERT_REPLY, values).scalar()
            if free and reply_id is not None:
                leased.append(
                    OutboxItem(reply_id, reply.recipient_id, reply.body, 1, now, reply.channel)
                )
        return leased

    def add(self, recipient_id: str, origin: str, seq: int, body: dict) -> int | None:
        """Commits one message; its id when it is leased to this owner to be sent now, None
        when it waits behind an earlier one or was stored before."""
        stored = self.store([Reply(recipient_id, origin, seq, body)])
        return stored.leased[0].id if stored.leased else None

    def claim(
        self, limit: int, ids: Iterable[int] | None = None, recipient_id: str | None = None
    ) -> list[OutboxItem]:
        with self._transaction() as session:
            rows = self._claim(session, limit, ids, recipient_id)
            return [
                OutboxItem(
                    r.id, r.recipient_id, r.body, r.attempts, r.created_at, r.channel, r.tried_at
                )
                for r in rows
            ]

    def sent(
        self,
        reply_id: int,
        recipient_id: str,
        channel_mid: str | None = None,
        channel: str = INSTAGRAM,
    ) -> bool:
        """The channel accepted it: the body (a patient may be named in it) is erased and the
        recipient kept only as a keyed hash; the channel's id for it is kept (Instagram's in
        `OwnMessage`: its echo is the bot's own; Twilio's on the row, for its delivery
        status). True when another message to the recipient waits."""
        now = self.clock()
        recipient_hash = hash_id(recipient_id, self.hash_key)
        provider = channel_mid if channel == SMS else None
        # A text keeps its number until its delivery report (which may say it failed, for
        # staff to follow up); erasure and retention delete it with the row.
        kept = recipient_id if channel == SMS else recipient_hash
        values = {"id": reply_id, "recipient": kept, "now": now, "provider": provider}
        with one_writer_at_a_time(self.engine), self.engine.begin() as connection:
            origin = connection.execute(_SQL_REPLY_SENT, values).scalar()
            if channel_mid and channel == INSTAGRAM:
                connection.execute(_SQL_OWN_MESSAGE, {"mid": channel_mid, "now": now})
            reminders.note_delivery(connection, origin, reminders.SENT, recipient_hash, now)
            _drop_if_erased(connection, reply_id, recipient_id, recipient_hash)
            return bool(
                connection.execute(_SQL_REPLIES_PENDING, {"recipient": recipient_id}).scalar()
            )

    def failed(self, reply_id: int, error: str, reason: str = reminders.FAILED) -> None:
        """A dead letter: kept, with its body, for `python -m clinic outbox --failed`;
        `reason` is what a reminder records ("outside_window", "recipient_unavailable"…)."""
        with one_writer_at_a_time(self.engine), self.engine.begin() as connection:
            origin, recipient_id = connection.execute(
                _SQL_REPLY_FAILED, {"id": reply_id, "error": error[:64]}
            ).first() or (None, None)
            reminders.note_delivery(connection, origin, reason, None, self.clock())
            if recipient_id is not None:
                hashed = hash_id(recipient_id, self.hash_key)
                _drop_if_erased(connection, reply_id, recipient_id, hashed)

    def opted_out(self, reply_id: int, phone: str) -> None:
        """Twilio refused a text because its number opted out (STOP): kept as failed, and
        the patient with that number takes no more texts."""
        now = self.clock()
        with one_writer_at_a_time(self.engine), self.engine.begin() as connection:
            origin = connection.execute(
                _SQL_REPLY_FAILED, {"id": reply_id, "error": "opted out (21610)"}
            ).scalar()
            connection.execute(_SQL_NO_TEXTS, {"phone": phone})
            reminders.note_delivery(connection, origin, "recipient_unavailable", None, now)

    def wait_for_pace(self, channel: str, interval: timedelta) -> None:
        """Waits for this process's turn to send on `channel`, one every `interval` over
        every process that sends (a compare-and-set on the channel's `send_pace` row)."""
        while True:
            now = self.clock()
            with one_writer_at_a_time(self.engine), self.engine.begin() as connection:
                current = connection.execute(_SQL_PACE, {"channel": channel}).scalar()
                if current is None:
                    connection.execute(
                        _SQL_PACE_START, {"channel": channel, "next_at": now + interval}
                    )
                    return
                slot = max(current, now)
                taken = connection.execute(
                    _SQL_PACE_TAKE,
                    {"channel": channel, "old": current, "next_at": slot + interval},
                ).rowcount
            if taken == 1:
                wait = (slot - now).total_seconds()
                if wait > 0:
                    time.sleep(wait)
                return

    def delivery_report(self, provider_id: str, status: str, error_code: str | None) -> bool:
        """Twilio's status callback for a text: its last status is kept; an undelivered or
        failed one becomes a dead letter (staff see it), its reminder failed. False when no
        text has that id (any more)."""
        failed = status in ("undelivered", "failed")
        with one_writer_at_a_time(self.engine), self.engine.begin() as connection:
            values = {"provider": provider_id, "delivery": status[:16]}
            if failed:
                values["error"] = f"text {status} (code {error_code or '?'})"[:64]
            origin = connection.execute(
                _SQL_DELIVERY_FAILED if failed else _SQL_DELIVERY, values
            ).scalar()
            if origin is None:
                return False
            if failed:
                reminders.note_delivery(connection, origin, reminders.FAILED, None, self.clock())
            return True

    def tried(self, reply_id: int) -> None:
        """A text's try is about to begin (committed first: after a crash, the next try asks
        Twilio whether this one went through before sending again)."""
        with one_writer_at_a_time(self.engine), self.engine.begin() as connection:
            connection.execute(_SQL_TRIED, {"id": reply_id, "now": self.clock()})

    def retry_later(self, reply_id: int, not_before: datetime, error: str) -> None:
        with self._transaction() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == reply_id)
                .values(lease_until=None, not_before=not_before, error=error[:64])
                .execution_options(synchronize_session=False)
            )

    def listing(self, failed_only: bool = False) -> list[OutboxMessage]:
        """Messages not sent yet, or given up (dead letters), oldest first."""
        statuses = [OUTBOX_FAILED] if failed_only else [OUTBOX_PENDING, OUTBOX_FAILED]
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.status.in_(statuses))
                    .order_by(OutboxMessage.id)
                )
            )


def _drop_if_erased(connection: Connection, reply_id: int, recipient_id: str, hashed: str) -> None:
    """A settled message to a sender being erased goes; the last one completes the erasure
    (clinic/erasure_markers.py)."""
    if connection.execute(_SQL_DROP_IF_ERASED, {"id": reply_id, "hash": hashed}).rowcount:
        erasure_markers.finish(connection, hashed, [recipient_id])
