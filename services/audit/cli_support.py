"""What the `safeguard audit` commands share: who is asking, the database session, the keys, clear refusals."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from sqlalchemy.ext.asyncio import AsyncSession

    from services.audit.heads import WitnessLog
    from services.audit.keyring import KeyRing


def now() -> datetime:
    return datetime.now(UTC)


Viewer = Annotated[str, typer.Option("--viewer", envvar="SAFEGUARD_OPERATOR_ID", help="Your person id (recorded).")]
ViewerRole = Annotated[
    str, typer.Option("--viewer-role", envvar="SAFEGUARD_OPERATOR_ROLE", help="Your role in the school (recorded).")
]
Reason = Annotated[str, typer.Option("--reason", help="Why you are reading the record (recorded).")]
BreakGlass = Annotated[
    bool, typer.Option("--break-glass", help="Emergency access outside your usual need to know (flagged).")
]


async def record_view(
    record_id: str, *, school_id: str, view: str, viewer: str, role: str, reason: str, break_glass: bool
) -> None:
    """Put a record.viewed in audit's outbox and commit it before anything is shown."""
    from services.audit.reads import note_view
    from shared.contracts.envelope import Actor
    from shared.read_audit import record_viewed

    viewed = record_viewed(
        record_id,
        school_id=school_id,
        viewer=Actor(id=viewer, role=role),
        view=view,
        reason=reason,
        now=now(),
        record_kind="case" if record_id != school_id else "school_record",
        break_glass=break_glass,
    )
    async with audit_session() as session:
        await note_view(session, viewed)


def utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def load_keyring() -> KeyRing:
    from services.audit.kek import load_or_create_kek
    from services.audit.keyring import KeyRing
    from services.audit.settings import AuditSettings

    return KeyRing(load_or_create_kek(AuditSettings().kek_path))


def finish(work: Coroutine[Any, Any, int]) -> NoReturn:
    """Run the command; a wrong key-encryption key or a missing head is a clear refusal (exit status 1)."""
    from services.audit.kek import WrongKeyEncryptionKey
    from services.audit.keyring import DataKeyAltered

    try:
        code = asyncio.run(work)
    except (WrongKeyEncryptionKey, DataKeyAltered, LookupError) as refused:
        print(str(refused), file=sys.stderr)
        code = 1
    raise typer.Exit(code)


def witness_and_key() -> tuple[WitnessLog, Ed25519PrivateKey]:
    from services.audit.heads import WitnessLog, load_or_create_signing_key
    from services.audit.settings import AuditSettings

    settings = AuditSettings()
    return WitnessLog(settings.witness_log_path), load_or_create_signing_key(settings.signing_key_path)


@asynccontextmanager
async def audit_session() -> AsyncIterator[AsyncSession]:
    """One transaction on the audit database, committed when the block ends."""
    from shared.db import make_engine, session_factory, transaction
    from shared.settings import get_settings

    engine = make_engine(get_settings().database_url, pool_size=1)
    try:
        async with transaction(session_factory(engine)) as session:
            yield session
    finally:
        await engine.dispose()
