"""The `safeguard audit` command line run as a separate process, as an operator would run it."""

from __future__ import annotations

import asyncio
import os
import sys

from shared.settings import Settings, as_environment
from tests.conftest import REPO_ROOT


async def safeguard(settings: Settings, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the `safeguard` command line as an operator would, against this test's database, streams and keys."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SAFEGUARD_")}
    environment.update(as_environment(settings))
    for name in ("SAFEGUARD_AUDIT_SIGNING_KEY_PATH", "SAFEGUARD_AUDIT_WITNESS_LOG_PATH", "SAFEGUARD_AUDIT_KEK_PATH"):
        environment[name] = os.environ[name]
    environment["SAFEGUARD_OPERATOR_ID"] = "s-bird"
    environment["SAFEGUARD_OPERATOR_ROLE"] = "designated_safeguarding_lead"
    environment.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args, cwd=REPO_ROOT, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output = (await process.communicate())[0].decode()
    return process.returncode or 0, output
