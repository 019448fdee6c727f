"""`safeguard audit ...`: verify the ledger against its signed heads, and export a self-verifying bundle."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from sqlalchemy.ext.asyncio import AsyncSession

    from services.audit.heads import WitnessLog

audit_app = typer.Typer(
    help="Prove the record: verify, replay and export it for an outside auditor.", no_args_is_help=True
)


def _now() -> datetime:
    return datetime.now(UTC)


Viewer = Annotated[str, typer.Option("--viewer", envvar="SAFEGUARD_OPERATOR_ID", help="Your person id (recorded).")]
ViewerRole = Annotated[
    str, typer.Option("--viewer-role", envvar="SAFEGUARD_OPERATOR_ROLE", help="Your role in the school (recorded).")
]
Reason = Annotated[str, typer.Option("--reason", help="Why you are reading the record (recorded).")]
BreakGlass = Annotated[
    bool, typer.Option("--break-glass", help="Emergency access outside your usual need to know (flagged).")
]


async def _record_view(
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
        now=_now(),
        record_kind="case" if record_id != school_id else "school_record",
        break_glass=break_glass,
    )
    async with _session() as session:
        await note_view(session, viewed)


@audit_app.command("verify")
def verify(
    school: Annotated[str | None, typer.Option(help="Only this school (default: every school).")] = None,
    processes: Annotated[int, typer.Option(help="Worker processes re-hashing a large ledger (1: none).")] = 1,
) -> None:
    """Recompute every entry, the chain and the tree; check every signed head; name the first problem."""
    from services.audit.checks import verify_ledger

    async def run() -> int:
        witness, key = _witness_and_key()
        async with _session() as session:
            reports = await verify_ledger(
                session, witness=witness, public_key=key.public_key(), school_id=school, processes=processes
            )
        for report in reports:
            status = "ok" if report.ok else f"FAILED: {report.problem}"
            print(
                f"{report.school_id}: {report.entries} entries, {report.heads} signed heads, "
                f"{report.anchored} anchored: {status}"
            )
        return 0 if all(report.ok for report in reports) else 1

    raise typer.Exit(asyncio.run(run()))


@audit_app.command("export")
def export(
    school: Annotated[str, typer.Option(help="The school whose record to export.")],
    start: Annotated[datetime | None, typer.Option("--from", help="Entries that occurred at or after this.")] = None,
    end: Annotated[datetime | None, typer.Option("--to", help="Entries that occurred before this.")] = None,
    case: Annotated[str | None, typer.Option("--case", help="Only this case's entries.")] = None,
    out: Annotated[Path | None, typer.Option(help="Bundle file (default: a name saying what it holds).")] = None,
    *,
    viewer: Viewer,
    viewer_role: ViewerRole,
    reason: Reason,
    break_glass: BreakGlass = False,
) -> None:
    """Write a bundle (JSON Lines, signed heads, proofs, public key) that verify_export checks without a database."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from services.audit.export import Selection, default_bundle_path, export_bundle
    from services.audit.reading import schools_with_entries

    if case is not None and (start is not None or end is not None):
        raise typer.BadParameter("choose --case or --from/--to, not both")
    selection = Selection(start=_utc(start), end=_utc(end), case_id=case)
    created_at = _now()
    target = out or default_bundle_path(school, selection=selection, created_at=created_at)

    async def run() -> int:
        witness, key = _witness_and_key()
        await _record_view(
            case or school,
            school_id=school,
            view="export",
            viewer=viewer,
            role=viewer_role,
            reason=reason,
            break_glass=break_glass,
        )
        async with _session() as session:
            total = (await schools_with_entries(session)).get(school, 0)
            columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            with Progress(*columns, transient=True) as bar, target.open("w", encoding="utf-8") as file:
                task = bar.add_task("export", total=2 * total)  # two passes over the ledger
                summary = await export_bundle(
                    session,
                    file,
                    school_id=school,
                    selection=selection,
                    witness=witness,
                    public_key=key.public_key(),
                    created_at=created_at,
                    progress=lambda done: bar.advance(task, done),
                )
        print(f"wrote {target}: {summary.entries} entries proved against the signed head over {summary.tree_size}")
        return 0

    try:
        raise typer.Exit(asyncio.run(run()))
    except LookupError as missing:
        print(str(missing), file=sys.stderr)
        raise typer.Exit(1) from None


@audit_app.command("replay")
def replay(
    school: Annotated[str, typer.Option(help="The school whose cases to rebuild.")],
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", help="The moment to rebuild them at (default: now).")
    ] = None,
    case: Annotated[str | None, typer.Option("--case", help="Only this case, with its full chronology.")] = None,
    read_model: Annotated[
        str | None, typer.Option("--read-model", help="Rebuild a read model instead: 'routing.cases'.")
    ] = None,
    *,
    viewer: Viewer,
    viewer_role: ViewerRole,
    reason: Reason,
    break_glass: BreakGlass = False,
) -> None:
    """Rebuild every case (or one) as it stood at a moment, from the ledger, as JSON."""
    import json

    from services.audit.replay import rebuild_case_index, replay_case, replay_cases, state_json

    if read_model not in (None, "routing.cases"):
        raise typer.BadParameter("the read models replay rebuilds: routing.cases")
    moment = _utc(as_of)

    async def run() -> int:
        await _record_view(
            case or school,
            school_id=school,
            view="replay",
            viewer=viewer,
            role=viewer_role,
            reason=reason,
            break_glass=break_glass,
        )
        async with _session() as session:
            if read_model is not None:
                document: object = await rebuild_case_index(session, school_id=school, as_of=moment)
            elif case is not None:
                document = await replay_case(session, school_id=school, case_id=case, as_of=moment)
                if document is None:
                    print(f"no case {case} at {school} by then", file=sys.stderr)
                    return 1
            else:
                cases = await replay_cases(session, school_id=school, as_of=moment)
                document = {case_id: state_json(state) for case_id, state in sorted(cases.items())}
        print(json.dumps(document, indent=2, default=str, ensure_ascii=False))
        return 0

    raise typer.Exit(asyncio.run(run()))


@audit_app.command("who-read")
def who_read(
    case: Annotated[str, typer.Option("--case", help="The case whose readers to list.")],
    school: Annotated[str | None, typer.Option(help="Only views recorded at this school.")] = None,
) -> None:
    """List every recorded view of a case: who, their role, when, how, why, and whether it was break-glass."""
    from services.audit.reads import who_read as views_of

    async def run() -> int:
        async with _session() as session:
            views = await views_of(session, case_id=case, school_id=school)
        for view in views:
            flag = "  BREAK-GLASS" if view["break_glass"] else ""
            print(
                f"{view['viewed_at']}  {view['viewer']} ({view['role']})  {view['view']} via {view['via']}: "
                f"{view['reason']}{flag}"
            )
        if not views:
            print(f"no recorded views of {case}")
        return 0

    raise typer.Exit(asyncio.run(run()))


@audit_app.command("public-key")
def public_key() -> None:
    """Print the audit public key (PEM) to give to an outside auditor with an export."""
    from services.audit.heads import public_key_pem

    _, key = _witness_and_key()
    print(public_key_pem(key.public_key()), end="")


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _witness_and_key() -> tuple[WitnessLog, Ed25519PrivateKey]:
    from services.audit.heads import WitnessLog, load_or_create_signing_key
    from services.audit.settings import AuditSettings

    settings = AuditSettings()
    return WitnessLog(settings.witness_log_path), load_or_create_signing_key(settings.signing_key_path)


@asynccontextmanager
async def _session() -> AsyncIterator[AsyncSession]:
    """One read-only transaction on the audit database."""
    from shared.db import make_engine, session_factory, transaction
    from shared.settings import get_settings

    engine = make_engine(get_settings().database_url, pool_size=1)
    try:
        async with transaction(session_factory(engine)) as session:
            yield session
    finally:
        await engine.dispose()
