"""Audit ledger: each entry's exact hashed bytes (`entry`), the record that verify proves and readers read.

Existing rows are backfilled from the canonical form of their stored event, exactly the bytes verify hashed
until now (previous hash, sequence, canonical JSON), so a row that did not verify before still does not.

Revision ID: 0004
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "audit"
BATCH = 5_000


def _canonical(document: Any) -> bytes:
    # services.audit.domain.canonical_json as it stands at this revision (a migration does not import app code)
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def upgrade() -> None:
    op.add_column("ledger", sa.Column("entry", sa.LargeBinary), schema=SCHEMA)
    bind = op.get_bind()
    # The ledger refuses UPDATE; only this backfill (as the owner, inside the migration's transaction) may write.
    op.execute(f"alter table {SCHEMA}.ledger disable trigger ledger_no_update")
    after = 0
    while True:
        rows = bind.execute(
            sa.text(
                f"select position, school_sequence, previous_hash, event::text as event from {SCHEMA}.ledger "
                "where position > :after order by position limit :batch"
            ),
            {"after": after, "batch": BATCH},
        ).all()
        if not rows:
            break
        bind.execute(
            sa.text(f"update {SCHEMA}.ledger set entry = :entry where position = :position"),
            [
                {
                    "position": row.position,
                    "entry": b"%s\n%d\n%s"
                    % (row.previous_hash.encode(), row.school_sequence, _canonical(json.loads(row.event))),
                }
                for row in rows
            ],
        )
        after = rows[-1].position
    op.execute(f"alter table {SCHEMA}.ledger enable trigger ledger_no_update")
    op.alter_column("ledger", "entry", nullable=False, schema=SCHEMA)
