"""Serve an ASGI app on 127.0.0.1 at a port the system picks, inside the test's event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from tests.support.waiting import eventually


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) while uvicorn serves `app`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        await eventually(lambda: _started(server), what="local HTTP server started")
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        listener.close()


async def _started(server: uvicorn.Server) -> bool:
    return server.started
