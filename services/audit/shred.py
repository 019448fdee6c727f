"""Crypto-shredding: destroy a subject's (or a whole school's) data keys, and record that it was done.

The ledger is never touched: its rows, hashes, heads and proofs stay as they were and keep verifying, while the
fields sealed under the destroyed keys read as erased from then on. The `key.shredded` event (what was shredded,
when, by whom and on what basis, never any content) goes into audit's outbox in the same transaction as the
deletion, so the ledger records every shredding that happened and none that did not.
"""

from __future__ import annotations

from datetime import datetime
from typing import get_args

from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.keyring import KeyRing
from services.audit.personal import key_id_for, normalised_contact
from services.audit.store import SCHEMA, lock_school
from shared.contracts.envelope import Actor
from shared.contracts.record_events import KeyShredded, KeyShreddedPayload, ShredBasis, ShredScope
from shared.inbox_outbox import InboxOutbox

SCOPES: tuple[str, ...] = get_args(ShredScope)
BASES: tuple[str, ...] = get_args(ShredBasis)


async def shred(
    session: AsyncSession,
    *,
    keyring: KeyRing,
    school_id: str,
    scope: ShredScope,
    subject: str,
    basis: ShredBasis,
    actor: Actor,
    now: datetime,
) -> KeyShredded | None:
    """Destroy the key(s) and enqueue `key.shredded`; None when there was no such key (nothing is recorded).

    `subject` is the person id, the case id, or the reporter's contact as they gave it; ignored for a school.
    """
    await lock_school(session, school_id=school_id)  # no append seals under a key while it is being destroyed
    if scope == "school":
        key_ids, named = None, ""
    elif scope == "reporter":
        keys = await keyring.school(session, school_id=school_id, key_ids=(), create=False)
        if keys is None:
            return None
        named = keys.pseudonym(normalised_contact(subject))
        key_ids = [key_id_for("reporter", named)]
    else:
        named = subject
        key_ids = [key_id_for(scope, subject)]
    destroyed = await keyring.shred(session, school_id=school_id, key_ids=key_ids)
    if not destroyed:
        return None
    payload = KeyShreddedPayload(
        scope=scope,
        subject=named,
        key_ids=destroyed if key_ids is not None else [],
        keys_destroyed=len(destroyed),
        basis=basis,
    )
    event: KeyShredded = KeyShredded.new(
        payload, school_id=school_id, aggregate_id=named or school_id, actor=actor, occurred_at=now
    )
    await InboxOutbox(SCHEMA).enqueue(session, [event])
    return event
