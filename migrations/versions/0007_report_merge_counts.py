"""reports count merges and unanalyzed commits apart from the total

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 11:40:00

Before: `total` counted every commit of the day, merges included, and the archive took the merges
as total - high - medium - low. After: `total` counts the commits (merges are listed apart, never
counted), `merges` and `unanalyzed` are columns of their own. Existing rows are recounted from the
entries of their stored JSON; the downgrade folds the merges back into the total.
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def upgrade() -> None:
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merges', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('unanalyzed', sa.Integer(), nullable=False, server_default='0'))
    bind = op.get_bind()
    table = sa.table("report", sa.column("id", sa.Integer), sa.column("data", sa.JSON), sa.column("total", sa.Integer),
                     sa.column("merges", sa.Integer), sa.column("unanalyzed", sa.Integer))
    for row in bind.execute(sa.select(table.c.id, table.c.data)).mappings().all():
        entries = _json(row["data"]).get("entries") or []
        merges = sum(1 for e in entries if len((e.get("commit") or {}).get("parents") or ()) > 1)
        unanalyzed = sum(1 for e in entries
                         if e.get("analysis") is None and len((e.get("commit") or {}).get("parents") or ()) <= 1)
        bind.execute(table.update().where(table.c.id == row["id"]).values(
            total=len(entries) - merges, merges=merges, unanalyzed=unanalyzed))


def downgrade() -> None:
    bind = op.get_bind()
    table = sa.table("report", sa.column("total", sa.Integer), sa.column("merges", sa.Integer))
    bind.execute(table.update().values(total=table.c.total + table.c.merges))
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.drop_column('unanalyzed')
        batch_op.drop_column('merges')
