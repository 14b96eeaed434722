"""repository.collecting_since: a fetch in progress, so planners do not cut a window before its commits

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 16:00:00

Set and committed when a fetch of the repository starts (its new commits are stamped first seen at
that instant), cleared in the transaction that stores them. A window planned meanwhile ends just
before it, so those commits go to the next email rather than to none.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('repository', schema=None) as batch_op:
        batch_op.add_column(sa.Column('collecting_since', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('repository', schema=None) as batch_op:
        batch_op.drop_column('collecting_since')
