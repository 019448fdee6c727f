"""`safeguard audit ...`: verify the ledger against its signed heads, replay and export it, shred keys."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from services.audit.cli_support import (
    BreakGlass,
    Reason,
    Viewer,
    ViewerRole,
    audit_session,
    finish,
    load_keyring,
    now,
    record_view,
    utc,
    witness_and_key,
)

audit_app = typer.Typer(
    help="Prove the record: verify, replay and export it for an outside auditor.", no_args_is_help=True
)


@audit_app.command("verify")
def verify(
    school: Annotated[str | None, typer.Option(help="Only this school (default: every school).")] = None,
    processes: Annotated[int, typer.Option(help="Worker processes re-hashing a large ledger (1: none).")] = 1,
) -> None:
    """Recompute every entry, the chain and the tree; check every signed head; name the first problem."""
    from services.audit.checks import verify_ledger

    async def run() -> int:
        witness, key = witness_and_key()
        async with audit_session() as session:
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

    finish(run())


@audit_app.command("export")
def export(
    school: Annotated[str, typer.Option(help="The school whose record to export.")],
    start: Annotated[datetime | None, typer.Option("--from", help="Entries that occurred at or after this.")] = None,
    end: Annotated[datetime | None, typer.Option("--to", help="Entries that occurred before this.")] = None,
    case: Annotated[str | None, typer.Option("--case", help="Only this case's entries.")] = None,
    out: Annotated[Path | None, typer.Option(help="Bundle file (default: a name saying what it holds).")] = None,
    decrypted: Annotated[
        Path | None,
        typer.Option(help="Also write the entries opened (names, narrative) here: NOT covered by the hashes."),
    ] = None,
    *,
    viewer: Viewer,
    viewer_role: ViewerRole,
    reason: Reason,
    break_glass: BreakGlass = False,
) -> None:
    """Write a bundle (JSON Lines, signed heads, proofs, public key) that verify_export checks without a database."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from services.audit.export import Selection, default_bundle_path, export_bundle, write_decrypted_view
    from services.audit.reading import schools_with_entries

    if case is not None and (start is not None or end is not None):
        raise typer.BadParameter("choose --case or --from/--to, not both")
    selection = Selection(start=utc(start), end=utc(end), case_id=case)
    created_at = now()
    target = out or default_bundle_path(school, selection=selection, created_at=created_at)

    async def run() -> int:
        witness, key = witness_and_key()
        await record_view(
            case or school,
            school_id=school,
            view="export" if decrypted is None else "export_decrypted",
            viewer=viewer,
            role=viewer_role,
            reason=reason,
            break_glass=break_glass,
        )
        async with audit_session() as session:
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
            if decrypted is not None:  # personal data in clear: readable by its owner only
                descriptor = os.open(decrypted, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                    opened = await write_decrypted_view(
                        session,
                        file,
                        keyring=load_keyring(),
                        school_id=school,
                        selection=selection,
                        bundle=target.name,
                        through=summary.tree_size,
                    )
                print(f"wrote {decrypted}: {opened} entries opened (a reading aid, not proved by the bundle)")
        print(f"wrote {target}: {summary.entries} entries proved against the signed head over {summary.tree_size}")
        return 0

    finish(run())


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
    moment = utc(as_of)

    async def run() -> int:
        await record_view(
            case or school,
            school_id=school,
            view="replay",
            viewer=viewer,
            role=viewer_role,
            reason=reason,
            break_glass=break_glass,
        )
        keyring = load_keyring()
        async with audit_session() as session:
            if read_model is not None:
                document: object = await rebuild_case_index(session, keyring=keyring, school_id=school, as_of=moment)
            elif case is not None:
                document = await replay_case(session, keyring=keyring, school_id=school, case_id=case, as_of=moment)
                if document is None:
                    print(f"no case {case} at {school} by then", file=sys.stderr)
                    return 1
            else:
                cases = await replay_cases(session, keyring=keyring, school_id=school, as_of=moment)
                document = {case_id: state_json(state) for case_id, state in sorted(cases.items())}
        print(json.dumps(document, indent=2, default=str, ensure_ascii=False))
        return 0

    finish(run())


@audit_app.command("who-read")
def who_read(
    case: Annotated[str, typer.Option("--case", help="The case whose readers to list.")],
    school: Annotated[str | None, typer.Option(help="Only views recorded at this school.")] = None,
) -> None:
    """List every recorded view of a case: who, their role, when, how, why, and whether it was break-glass."""
    from services.audit.reads import who_read as views_of

    async def run() -> int:
        async with audit_session() as session:
            views = await views_of(session, keyring=load_keyring(), case_id=case, school_id=school)
        for view in views:
            flag = "  BREAK-GLASS" if view["break_glass"] else ""
            print(
                f"{view['viewed_at']}  {view['viewer']} ({view['role']})  {view['view']} via {view['via']}: "
                f"{view['reason']}{flag}"
            )
        if not views:
            print(f"no recorded views of {case}")
        return 0

    finish(run())


@audit_app.command("shred")
def shred(
    school: Annotated[str, typer.Option(help="The school whose key(s) to destroy.")],
    person: Annotated[str | None, typer.Option(help="A person id: their names and details, in every case.")] = None,
    case: Annotated[str | None, typer.Option("--case", help="A case id: its narrative and unnamed children.")] = None,
    reporter: Annotated[str | None, typer.Option(help="A reporter's contact, as they gave it.")] = None,
    whole_school: Annotated[bool, typer.Option("--whole-school", help="Every key of the school.")] = False,
    basis: Annotated[
        str, typer.Option(help="retention_ended, erasure_request or other (recorded).")
    ] = "retention_ended",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask to confirm shredding a whole school.")] = False,
    *,
    viewer: Viewer,
    viewer_role: ViewerRole,
) -> None:
    """Crypto-shred: destroy data keys so the fields they sealed read as erased; every hash and proof still holds."""
    from services.audit.shred import BASES
    from services.audit.shred import shred as destroy
    from shared.contracts.envelope import Actor

    chosen = [(scope, value) for scope, value in (("person", person), ("case", case), ("reporter", reporter)) if value]
    if whole_school:
        chosen.append(("school", ""))
    if len(chosen) != 1:
        raise typer.BadParameter("choose one of --person, --case, --reporter or --whole-school")
    if basis not in BASES:
        raise typer.BadParameter(f"--basis is one of {', '.join(BASES)}")
    [(scope, subject)] = chosen
    if scope == "school" and not yes:
        typer.confirm(f"Destroy every key of {school}? Its names and narrative can never be read again", abort=True)

    async def run() -> int:
        async with audit_session() as session:
            event = await destroy(
                session,
                keyring=load_keyring(),
                school_id=school,
                scope=scope,  # type: ignore[arg-type]
                subject=subject,
                basis=basis,  # type: ignore[arg-type]
                actor=Actor(id=viewer, role=viewer_role),
                now=now(),
            )
        if event is None:
            print(f"no {scope} key to shred at {school}: nothing was destroyed", file=sys.stderr)
            return 1
        print(
            f"shredded {event.payload.keys_destroyed} key(s) of {school} ({scope} {event.payload.subject}): "
            f"those fields now read as erased; recorded as key.shredded {event.event_id}"
        )
        return 0

    finish(run())


@audit_app.command("public-key")
def public_key() -> None:
    """Print the audit public key (PEM) to give to an outside auditor with an export."""
    from services.audit.heads import public_key_pem

    _, key = witness_and_key()
    print(public_key_pem(key.public_key()), end="")
