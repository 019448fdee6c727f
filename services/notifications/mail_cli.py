"""`safeguard mail`: list and show the emails the local mail server (or the mail folder) kept."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from services.notifications import mailbox

mail_app = typer.Typer(help="Read the emails Safeguard sent while running locally.", no_args_is_help=True)

Folder = Annotated[
    Path,
    typer.Option(envvar="SAFEGUARD_MAIL_SINK_DIR", help="Folder of kept .eml messages (safeguard up's data dir/mail)."),
]
DEFAULT_FOLDER = Path(os.environ.get("SAFEGUARD_DATA_DIR", ".safeguard-data")) / "mail"


@mail_app.command("list")
def list_mail(folder: Folder = DEFAULT_FOLDER) -> None:
    """List kept emails, oldest first, numbered for `safeguard mail show`."""
    found = mailbox.kept(folder)
    if not found:
        typer.echo(f"No mail in {folder}.")
        return
    for number, mail in enumerate(found, start=1):
        typer.echo(f"{number:>3}  {mail.date}  {mail.to}  {mail.subject}")


@mail_app.command("show")
def show_mail(
    which: Annotated[str, typer.Argument(help="Number from `safeguard mail list`, or 'last'.")] = "last",
    folder: Folder = DEFAULT_FOLDER,
) -> None:
    """Show one email as its recipient reads it: headers, the decoded text and its links."""
    found = mailbox.kept(folder)
    if not found:
        typer.echo(f"No mail in {folder}.", err=True)
        raise typer.Exit(1)
    if which == "last":
        index = len(found)
    elif which.isdigit() and 1 <= int(which) <= len(found):
        index = int(which)
    else:
        typer.echo(f"No message {which!r}: choose 1 to {len(found)} or 'last'.", err=True)
        raise typer.Exit(2)
    message = mailbox.read(found[index - 1].path)
    for header in ("Date", "From", "To", "Subject"):
        typer.echo(f"{header}: {message[header]}")
    typer.echo("")
    typer.echo(mailbox.plain_text(message).rstrip())
    for link in mailbox.links(message):
        typer.echo(f"\nLink: {link}")
