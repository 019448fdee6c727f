"""A validated policy kept between runs of `safeguard route`, so the one-shot command skips YAML and validation.

Only the command line uses this; the routing service validates its policies as it always has. A kept policy is
served only to a policy file with exactly the same text, and only by the same code that validated it: the key
covers the policy engine's source, the concern contract, Python, pydantic and PyYAML. Anything else (a missing,
corrupt, stale or someone else's cache file) means the file is validated afresh and the copy replaced.

The copy is a pickle, so it is read only from a file this user owns and nobody else can write to.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

import pydantic_core
from pydantic.version import VERSION as PYDANTIC_VERSION

import shared.contracts.concern as concern_contract
from services.routing.policy.calendar import BankHolidays
from services.routing.policy.load import parse_policy, read_policy_text
from services.routing.policy.model import Policy

_ENGINE_SOURCES = (Path(__file__).with_name("policy"), Path(concern_contract.__file__), Path(__file__))
# The bank holidays a policy's calendar reads are this run's (remembered between runs by the caller), so they
# are kept out of the pickle and supplied again on loading.
_BANK_HOLIDAYS = "bank_holidays"


def load_policy_remembered(path: Path, *, cache_dir: Path, bank_holidays: BankHolidays) -> Policy:
    """The policy at `path`, validated once and then read back from `cache_dir` while nothing has changed."""
    text = read_policy_text(path)
    key = _key(text)
    kept = cache_dir / "policies" / f"{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]}.pickle"
    policy = _read(kept, key=key, bank_holidays=bank_holidays)
    if policy is None:
        policy = parse_policy(text, bank_holidays=bank_holidays, source=str(path))
        _write(kept, key=key, policy=policy, bank_holidays=bank_holidays)
    return policy


def _key(text: str) -> bytes:
    digest = hashlib.sha256()
    for part in (sys.version, PYDANTIC_VERSION, pydantic_core.__version__, version("PyYAML")):
        digest.update(part.encode() + b"\0")
    for source in sorted(_source_files()):
        digest.update(source.read_bytes() + b"\0")
    digest.update(text.encode())
    return digest.hexdigest().encode()


def _source_files() -> list[Path]:
    return [f for place in _ENGINE_SOURCES for f in (place.glob("*.py") if place.is_dir() else [place])]


class _Pickler(pickle.Pickler):
    def __init__(self, file: IO[bytes], *, bank_holidays: BankHolidays) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._bank_holidays = bank_holidays

    def persistent_id(self, obj: Any) -> str | None:
        return _BANK_HOLIDAYS if obj is self._bank_holidays else None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], *, bank_holidays: BankHolidays) -> None:
        super().__init__(file)
        self._bank_holidays = bank_holidays

    def persistent_load(self, pid: Any) -> Any:
        if pid != _BANK_HOLIDAYS:
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return self._bank_holidays


def _read(kept: Path, *, key: bytes, bank_holidays: BankHolidays) -> Policy | None:
    try:
        with kept.open("rb") as file:
            status = os.fstat(file.fileno())
            if status.st_uid != os.geteuid() or status.st_mode & 0o022:
                return None
            if file.readline().rstrip(b"\n") != key:
                return None
            policy = _Unpickler(file, bank_holidays=bank_holidays).load()
    except Exception:  # a missing or damaged cache file is only a cache miss, whatever unpickling raised
        return None
    return policy if isinstance(policy, Policy) else None


def _write(kept: Path, *, key: bytes, policy: Policy, bank_holidays: BankHolidays) -> None:
    partial = kept.with_suffix(f".{os.getpid()}.tmp")
    try:
        kept.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
            file.write(key + b"\n")
            _Pickler(file, bank_holidays=bank_holidays).dump(policy)
        partial.replace(kept)
    except OSError:
        # A cache that cannot be written only costs time on the next run.
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
