"""Check an audit export bundle with nothing but the bundle and the audit public key (no database).

    python -m services.audit.verify_export BUNDLE --public-key KEY.pem

Needs only Python's standard library and `cryptography`. Every entry's hash is recomputed from its content;
consecutive entries must link; the last entry of each run must be in the newest signed tree by its inclusion
proof; every head must carry a valid signature by KEY, name the head before it, and be consistent with it.
Exit status 0 when everything holds, 1 with the first problem named when not.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.domain import entry_hash
from services.audit.heads import SignedHead, head_signature_holds, key_id, load_public_key
from services.audit.merkle import entry_leaf, verify_consistency, verify_inclusion
from services.audit.verify import Problem

BUNDLE_FORMAT = "safeguard-audit-export/1"


@dataclass(frozen=True)
class BundleReport:
    school_id: str
    entries: int
    heads: int
    tree_size: int
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Failed(Exception):
    def __init__(self, kind: str, sequence: int | None, detail: str) -> None:
        self.problem = Problem(kind, sequence, detail)


class _BundleCheck:
    def __init__(self, public_key: Ed25519PublicKey) -> None:
        self.public_key = public_key
        self.school_id = ""
        self.entries = 0
        self.heads: list[SignedHead] = []  # only the newest is kept once checked against it
        self.head_count = 0
        self.last_sequence = 0
        self.last_hash = ""
        self.unproved: dict[int, str] = {}  # last sequence of each run -> its entry hash

    def header(self, line: dict[str, Any]) -> None:
        if line.get("kind") != "bundle" or line.get("format") != BUNDLE_FORMAT:
            raise _Failed("not a bundle", None, f"the first line is not a {BUNDLE_FORMAT} header")
        if key_id(load_public_key(line["public_key"])) != key_id(self.public_key):
            raise _Failed("forged head", None, "the bundle names a different public key from the one given")
        self.school_id = str(line["school_id"])

    def entry(self, line: dict[str, Any]) -> None:
        sequence = int(line["school_sequence"])
        if sequence <= self.last_sequence:
            raise _Failed("reordered", sequence, f"it comes after entry {self.last_sequence}")
        recomputed = entry_hash(previous_hash=line["previous_hash"], school_sequence=sequence, event=line["event"])
        if recomputed != line["entry_hash"]:
            raise _Failed("edited", sequence, "its content no longer matches its hash")
        if sequence == self.last_sequence + 1 and self.entries:
            if line["previous_hash"] != self.last_hash:
                raise _Failed("broken chain", sequence, "it does not follow the entry before it")
            self.unproved.pop(self.last_sequence)
        self.unproved[sequence] = recomputed
        self.last_sequence, self.last_hash = sequence, recomputed
        self.entries += 1

    def head(self, line: dict[str, Any]) -> None:
        signed = SignedHead.from_document(line)
        size = signed.head.tree_size
        if signed.head.school_id != self.school_id or not head_signature_holds(signed, public_key=self.public_key):
            raise _Failed("forged head", None, f"the head over {size} entries is not signed by the given key")
        previous = self.heads[-1] if self.heads else None
        if previous is not None:
            proof = [bytes.fromhex(h) for h in line.get("consistency", [])]
            consistent = verify_consistency(
                bytes.fromhex(previous.head.root_hash),
                old_size=previous.head.tree_size,
                new_size=size,
                new_root=bytes.fromhex(signed.head.root_hash),
                proof=proof,
            )
            if signed.head.previous != previous.ref or not consistent:
                raise _Failed("forged head", None, f"the head over {size} entries does not extend the one before")
        self.heads = [signed]
        self.head_count += 1

    def inclusion(self, line: dict[str, Any]) -> None:
        sequence, size = int(line["school_sequence"]), int(line["tree_size"])
        if not self.heads or self.heads[-1].head.tree_size != size:
            raise _Failed("unproved", sequence, f"its proof is for a tree of {size}, which no head here signs")
        if sequence not in self.unproved:
            raise _Failed("unproved", sequence, "a proof for an entry that does not end a run")
        proved = verify_inclusion(
            entry_leaf(self.unproved.pop(sequence)),
            index=sequence - 1,
            size=size,
            proof=[bytes.fromhex(h) for h in line["proof"]],
            root=bytes.fromhex(self.heads[-1].head.root_hash),
        )
        if not proved:
            raise _Failed("edited", sequence, "it (or an entry linked before it) is not in the signed tree")

    def finish(self) -> None:
        if not self.heads:
            raise _Failed("unproved", None, "the bundle has no signed head")
        if self.unproved:
            first = min(self.unproved)
            raise _Failed("unproved", first, "no inclusion proof reaches this entry")


def verify_bundle(lines: Iterable[str], *, public_key: Ed25519PublicKey) -> BundleReport:
    """Check a bundle read line by line; memory grows with the number of runs, not of entries."""
    check = _BundleCheck(public_key)
    problem = None
    try:
        iterator = iter(lines)
        check.header(json.loads(next(iterator, "{}")))
        for raw in iterator:
            line = json.loads(raw)
            getattr(check, {"entry": "entry", "head": "head", "inclusion": "inclusion"}[line["kind"]])(line)
        check.finish()
    except _Failed as failed:
        problem = failed.problem
    except (KeyError, ValueError, TypeError) as malformed:
        problem = Problem("malformed", None, f"the bundle cannot be read: {malformed!r}")
    size = check.heads[-1].head.tree_size if check.heads else 0
    return BundleReport(check.school_id, check.entries, check.head_count, size, problem)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verify_export", description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--public-key", type=Path, required=True, help="the audit service's public key (PEM)")
    options = parser.parse_args(argv)
    public_key = load_public_key(options.public_key.read_bytes())
    with options.bundle.open(encoding="utf-8") as file:
        report = verify_bundle(file, public_key=public_key)
    if report.problem is not None:
        print(f"FAILED {report.school_id}: {report.problem}")
        return 1
    print(
        f"OK {report.school_id}: {report.entries} entries proved in a tree of {report.tree_size}, "
        f"{report.heads} signed heads consistent, key {key_id(public_key)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
