"""The `safeguard` console script: `route` is answered before the rest of the command line is loaded."""

from __future__ import annotations

import sys


def main() -> None:
    """Send `safeguard route` to its typer-free implementation and everything else to the typer app."""
    if sys.argv[1:2] == ["route"]:
        from services.routing.route_command import main as route

        raise SystemExit(route(sys.argv[2:]))
    from services.cli import main as command_line

    command_line()
