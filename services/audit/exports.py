"""Export bundles for the console: written to this instance's private folder, fetched in chunks, then deleted.

A bundle can be far larger than one NATS message, so audit writes it to a file (0600, in a 0700 folder of its
own) and answers with an id; the console then asks for it a chunk at a time. The id names the audit instance
that holds the file, so with several instances only that one answers. A file is deleted once its last chunk is
fetched, or when it has been kept for `keep` without being fetched.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.export import Selection, default_bundle_path, export_bundle
from services.audit.heads import WitnessLog

CHUNK_BYTES = 256 * 1024  # base64 in a JSON reply: about 350 kB, well under NATS' 1 MB default
KEEP = timedelta(minutes=15)


class ExportGone(LookupError):
    """No such export here (never made, fetched already, or kept too long)."""


@dataclass(frozen=True)
class ExportFile:
    """One bundle written for one person."""

    export_id: str
    path: Path
    person_id: str
    filename: str
    size: int
    sha256: str
    entries: int
    created_at: datetime


class ExportFiles:
    """This audit instance's export bundles, by id."""

    def __init__(self, *, folder: Path | None = None, keep: timedelta = KEEP, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.instance = uuid.uuid4().hex[:12]
        self.folder = folder or Path(tempfile.mkdtemp(prefix="safeguard-audit-exports-"))
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keep = keep
        self.chunk_bytes = chunk_bytes
        self._files: dict[str, ExportFile] = {}

    def owns(self, export_id: object) -> bool:
        """Whether the id was made by this instance (whether or not the file is still here)."""
        return isinstance(export_id, str) and export_id.startswith(f"{self.instance}-")

    async def write(
        self,
        session: AsyncSession,
        *,
        school_id: str,
        selection: Selection,
        witness: WitnessLog,
        public_key: Ed25519PublicKey,
        person_id: str,
        now: datetime,
    ) -> ExportFile:
        """Write the bundle; LookupError when the school has no signed head yet (nothing can be proved)."""
        self.sweep(now)
        export_id = f"{self.instance}-{secrets.token_urlsafe(24)}"
        path = self.folder / f"{uuid.uuid4().hex}.jsonl"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                summary = await export_bundle(
                    session,
                    out,
                    school_id=school_id,
                    selection=selection,
                    witness=witness,
                    public_key=public_key,
                    created_at=now,
                )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        digest = hashlib.sha256()
        with path.open("rb") as file:
            while block := file.read(1 << 20):
                digest.update(block)
        made = ExportFile(
            export_id=export_id,
            path=path,
            person_id=person_id,
            filename=default_bundle_path(school_id, selection=selection, created_at=now).name,
            size=path.stat().st_size,
            sha256=digest.hexdigest(),
            entries=summary.entries,
            created_at=now,
        )
        self._files[export_id] = made
        return made

    def chunk(self, export_id: str, *, offset: int, person_id: str, now: datetime) -> tuple[bytes, bool]:
        """The bytes from `offset` and whether they are the last; the file goes once its last chunk is read."""
        self.sweep(now)
        made = self._files.get(export_id)
        if made is None or made.person_id != person_id or offset < 0:
            raise ExportGone(export_id)
        with made.path.open("rb") as file:
            file.seek(offset)
            data = file.read(self.chunk_bytes)
        last = offset + len(data) >= made.size
        if last:
            self._forget(export_id)
        return data, last

    def sweep(self, now: datetime) -> None:
        """Delete every bundle kept longer than `keep`."""
        for export_id, made in list(self._files.items()):
            if now - made.created_at > self.keep:
                self._forget(export_id)

    def _forget(self, export_id: str) -> None:
        made = self._files.pop(export_id, None)
        if made is not None:
            made.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Delete every bundle and the folder."""
        self._files.clear()
        shutil.rmtree(self.folder, ignore_errors=True)
