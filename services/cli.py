"""The `safeguard` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

# A command line has no use for pydantic plugins; not scanning every installed package for them saves
# tens of milliseconds on each `safeguard route`.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer

from services.audit.cli import audit_app
from services.bench.command import bench as bench_command
from services.launcher.privileges import DEFAULT_POSTGRES_SYSTEM_USER
from services.notifications.mail_cli import mail_app
from services.routing.cli import register as register_routing_commands
from services.routing.cli import run_command_line

# The rest of the launcher is imported inside `up`, so that `safeguard route` starts fast.

app = typer.Typer(help="Safeguard: safeguarding concerns for schools.", no_args_is_help=True, add_completion=False)


@app.callback()
def safeguard() -> None:
    """Safeguard's commands (a callback keeps `up` a subcommand even while it is the only one)."""


@app.command()
def up(
    data_dir: Annotated[
        Path, typer.Option(envvar="SAFEGUARD_DATA_DIR", help="Folder for the embedded servers' data.")
    ] = Path(".safeguard-data"),
    http_port: Annotated[
        int, typer.Option(envvar="SAFEGUARD_INTAKE_HTTP_PORT", help="Port of the intake HTTP API.")
    ] = 8080,
    notifications_port: Annotated[
        int,
        typer.Option(envvar="SAFEGUARD_NOTIFICATIONS_HTTP_PORT", help="Port of the notifications HTTP API."),
    ] = 8081,
    nats_port: Annotated[int, typer.Option(help="Port of the embedded NATS server (0: any free port).")] = 0,
    postgres_port: Annotated[int, typer.Option(help="Port of the embedded PostgreSQL (0: any free port).")] = 0,
    postgres_system_user: Annotated[
        str,
        typer.Option(
            envvar="SAFEGUARD_POSTGRES_SYSTEM_USER",
            help="Unprivileged system user the embedded PostgreSQL runs as when this runs as root.",
        ),
    ] = DEFAULT_POSTGRES_SYSTEM_USER,
    startup_timeout: Annotated[float, typer.Option(help="Seconds to wait for the services to be ready.")] = 60.0,
) -> None:
    """Run every service, with its own NATS and PostgreSQL unless SAFEGUARD_*_URL variables name them."""
    from services.launcher.up import UpOptions, run_up

    options = UpOptions(
        data_dir=data_dir.absolute(),
        http_port=http_port,
        notifications_port=notifications_port,
        nats_port=nats_port or None,
        postgres_port=postgres_port or None,
        nats_url=os.environ.get("SAFEGUARD_NATS_URL") or None,
        database_url=os.environ.get("SAFEGUARD_DATABASE_URL") or None,
        postgres_system_user=postgres_system_user,
        startup_timeout=startup_timeout,
    )
    raise typer.Exit(run_up(options, out=sys.stdout, err=sys.stderr))


register_routing_commands(app)
app.command(name="bench")(bench_command)
app.add_typer(audit_app, name="audit")
app.add_typer(mail_app, name="mail")


def main() -> None:
    """Entry point of the `safeguard` console script."""
    run_command_line(app)


if __name__ == "__main__":
    main()
