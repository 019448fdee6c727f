"""Export bundles on audit's disk: handed out in chunks to the person they were made for, then gone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from services.audit.exports import ExportFile, ExportFiles, ExportGone
from shared.contracts.envelope import utc_now

NOW = utc_now()


def holding(tmp_path: Path, data: bytes) -> tuple[ExportFiles, str]:
    files = ExportFiles(folder=tmp_path / "exports", chunk_bytes=4)
    export_id = f"{files.instance}-secret"
    path = files.folder / "bundle.jsonl"
    path.write_bytes(data)
    files._files[export_id] = ExportFile(export_id, path, "auditor-1", "b.jsonl", len(data), "", 1, NOW)
    return files, export_id


def test_chunks_come_in_order_to_their_owner_and_the_file_goes_after_the_last(tmp_path: Path) -> None:
    files, export_id = holding(tmp_path, b"0123456789")
    got, offset, last = b"", 0, False
    while not last:
        data, last = files.chunk(export_id, offset=offset, person_id="auditor-1", now=NOW)
        got, offset = got + data, offset + len(data)
    assert got == b"0123456789"
    assert list(files.folder.iterdir()) == []
    with pytest.raises(ExportGone):
        files.chunk(export_id, offset=0, person_id="auditor-1", now=NOW)


def test_nobody_else_gets_a_chunk_and_an_old_bundle_is_swept(tmp_path: Path) -> None:
    files, export_id = holding(tmp_path, b"0123456789")
    assert files.owns(export_id) and not files.owns("another-instance-secret")
    with pytest.raises(ExportGone):
        files.chunk(export_id, offset=0, person_id="s-bird", now=NOW)
    files.sweep(NOW + files.keep + timedelta(seconds=1))
    assert list(files.folder.iterdir()) == []
    with pytest.raises(ExportGone):
        files.chunk(export_id, offset=0, person_id="auditor-1", now=NOW)
