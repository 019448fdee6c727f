"""A minimal HTTP/1.1 keep-alive client for load: POST a body, read the status and the body.

httpx spends more CPU per request than a bare FastAPI handler does, and its pool slows as concurrency
grows (~230 bare POSTs/s at 1 client, ~90 at 32 on this machine), so with it the bench measured its own
client. This writes the request bytes and reads a Content-Length response on a connection it keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from urllib.parse import urlsplit


class ConnectionLost(ConnectionError):
    """The server closed the connection before answering (the request may or may not have been handled)."""


def request_bytes(*, host: str, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """An HTTP/1.1 POST with a Content-Length body."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """Status code, Content-Length and whether the server will close the connection, from a response head."""
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    length, closing = 0, False
    for line in header_lines:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            closing = True
    return status, length, closing


class Connection:
    """One keep-alive connection to `http://host:port`, reopened when the server closed it."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, *, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """Status and body of one POST; ConnectionLost when the connection broke under it."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(request_bytes(host=f"{self.host}:{self.port}", path=path, body=body, headers=headers))
            await self.writer.drain()
            status, length, closing = parse_head(await self.reader.readuntil(b"\r\n\r\n"))
            content = await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            await self.close()
            raise ConnectionLost(str(error)) from error
        if closing:
            await self.close()
        return status, content

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


class ConnectionPool:
    """Up to `size` connections, each used by one request at a time."""

    def __init__(self, base_url: str, *, size: int) -> None:
        self.base_url = base_url
        self.size = size
        self.idle: asyncio.Queue[Connection] = asyncio.Queue()
        self.opened: list[Connection] = []

    async def acquire(self) -> Connection:
        if self.idle.empty() and len(self.opened) < self.size:
            connection = Connection(self.base_url)
            self.opened.append(connection)
            return connection
        return await self.idle.get()

    def release(self, connection: Connection) -> None:
        self.idle.put_nowait(connection)

    async def close(self) -> None:
        for connection in self.opened:
            await connection.close()
