"""Writes the generated reference docs: the AsyncAPI event catalogue and the OpenAPI of each HTTP service.

`python -m services.docs` rewrites docs/reference/; `--check` exits 1 when the committed files are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from shared.settings import Settings

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference"


def generated() -> dict[str, str]:
    """Every generated document by file name, from the apps as they are wired (no server is contacted)."""
    from services.audit.app import create_app as audit_app
    from services.console.app import create_app as console_app
    from services.intake.app import create_app as intake_app
    from services.notifications.app import create_app as notifications_app
    from services.routing.app import create_app as routing_app

    policies = str(REFERENCE.parents[1] / "deploy" / "policies")
    settings = Settings(policy_dir=policies, signing_key="reference-docs-only")
    intake, intake_runtime = intake_app(settings)
    notifications, notifications_runtime = notifications_app(settings)
    _, routing = routing_app(settings)
    _, audit_runtime = audit_app(settings)
    console, console_runtime = console_app(settings)
    catalogue = AsyncAPI(
        intake_runtime.broker,
        routing.runtime.broker,
        notifications_runtime.broker,
        audit_runtime.broker,
        console_runtime.broker,
        title="Safeguard events",
        version="1",
        description="Every domain event on the stream, who publishes it and who consumes it. "
        "Subjects are <root>.<school_id>.<aggregate>.<event>; the root is `sg` unless configured.",
    )
    return {
        "asyncapi.json": _dump(catalogue.to_specification().to_jsonable()),
        "openapi-intake.json": _dump(intake.openapi()),
        "openapi-notifications.json": _dump(notifications.openapi()),
        "openapi-console.json": _dump(console.openapi()),
    }


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for name, text in generated().items():
        target = REFERENCE / name
        if target.exists() and target.read_text() == text:
            continue
        stale.append(name)
        if not check:
            target.write_text(text)
    if check and stale:
        print(f"stale generated docs: {', '.join(stale)}; run: python -m services.docs", file=sys.stderr)
        return 1
    print("docs/reference is current" if not stale else f"wrote {', '.join(stale)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
