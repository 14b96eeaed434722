"""each subscriber's clock: time zone, hour, frequency; commits' first sight; deliveries per slot

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 13:10:00

Subscribers get `timezone`, `hour`, `frequency` and `weekday`. Existing subscribers keep what they
received: DIGEST_TIMEZONE, the hour at which DIGEST_CRON fires there (its minutes dropped: a
subscriber's hour is a whole hour), daily.

Commits get `first_seen_at`, what an email's window selects on. A commit already in a report was
delivered with that report's emails, so it counts as first seen by the end of its report day (or
when it was stored, if earlier); other commits when they were stored.

Deliveries were one per (subscriber, report date), sent when DIGEST_CRON fired the day after. Each
becomes the slot it was sent at: `slot` = DIGEST_CRON's fire time on the next day in
DIGEST_TIMEZONE, `date` = that local date, window (slot - 1 day, slot]. So the next email's window
starts where the last old one ended and nothing is sent twice. A new unique key (subscriber, slot).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op
from croniter import croniter

from newsletter.config import load_config

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _settings() -> tuple[str, int]:
    config = load_config()
    timezone = str(config["DIGEST_TIMEZONE"] or "UTC")
    fired = croniter(str(config["DIGEST_CRON"] or "0 7 * * *"), datetime(2026, 1, 1)).get_next(datetime)
    return timezone, fired.hour


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def upgrade() -> None:
    timezone, hour = _settings()
    tz = ZoneInfo(timezone)
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), nullable=False, server_default=timezone))
        batch_op.add_column(sa.Column('hour', sa.Integer(), nullable=False, server_default=str(hour)))
        batch_op.add_column(sa.Column('frequency', sa.Enum('daily', 'weekly', name='frequency', native_enum=False,
                                                           create_constraint=True, length=20),
                                      nullable=False, server_default='daily'))
        batch_op.add_column(sa.Column('weekday', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_slot_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_subscriber_next_slot_at'), ['next_slot_at'], unique=False)
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        # New rows get their values from the application; only the existing ones took DIGEST_*.
        batch_op.alter_column('timezone', server_default='UTC')
        batch_op.alter_column('hour', server_default='8')
    with op.batch_alter_table('signup_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schedule', sa.JSON(), nullable=True))

    with op.batch_alter_table('repository', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_error_kind', sa.String(length=20), nullable=True))
    with op.batch_alter_table('repo_commit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    commits = sa.table("repo_commit", sa.column("id", sa.Integer), sa.column("report_date", sa.Date),
                       sa.column("created_at", sa.DateTime(timezone=True)),
                       sa.column("first_seen_at", sa.DateTime(timezone=True)))
    for row in bind.execute(sa.select(commits.c.id, commits.c.report_date, commits.c.created_at)).mappings().all():
        seen = _aware(row["created_at"])
        if row["report_date"] is not None:
            day = row["report_date"] + timedelta(days=1)
            seen = min(seen, datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC))
        bind.execute(commits.update().where(commits.c.id == row["id"]).values(first_seen_at=seen))
    with op.batch_alter_table('repo_commit', schema=None) as batch_op:
        batch_op.alter_column('first_seen_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index(batch_op.f('ix_repo_commit_first_seen_at'), ['first_seen_at'], unique=False)

    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slot', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('window_start', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('window_end', sa.DateTime(timezone=True), nullable=True))
    deliveries = sa.table("delivery", sa.column("id", sa.Integer), sa.column("date", sa.Date),
                          sa.column("slot", sa.DateTime(timezone=True)),
                          sa.column("window_start", sa.DateTime(timezone=True)),
                          sa.column("window_end", sa.DateTime(timezone=True)))
    # Newest first, so moving a date one day on never meets the subscriber's row of the next day.
    for row in bind.execute(sa.select(deliveries.c.id, deliveries.c.date)
                            .order_by(deliveries.c.date.desc())).mappings().all():
        sent_on = row["date"] + timedelta(days=1)
        slot = datetime(sent_on.year, sent_on.month, sent_on.day, hour, tzinfo=tz).astimezone(UTC)
        bind.execute(deliveries.update().where(deliveries.c.id == row["id"]).values(
            date=sent_on, slot=slot, window_start=slot - timedelta(days=1), window_end=slot))
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        for column in ('slot', 'window_start', 'window_end'):
            batch_op.alter_column(column, existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_unique_constraint('uq_delivery_subscriber_slot', ['subscriber_id', 'slot'])

    op.create_table('ingest_run',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('repositories', sa.Integer(), nullable=False),
                    sa.Column('new_commits', sa.Integer(), nullable=False),
                    sa.Column('failed', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('due_at'))


def downgrade() -> None:
    op.drop_table('ingest_run')
    bind = op.get_bind()
    deliveries = sa.table("delivery", sa.column("id", sa.Integer), sa.column("date", sa.Date))
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_constraint('uq_delivery_subscriber_slot', type_='unique')
        batch_op.drop_column('window_end')
        batch_op.drop_column('window_start')
        batch_op.drop_column('slot')
    # Back to report dates: the day before the slot's date.
    for row in bind.execute(sa.select(deliveries.c.id, deliveries.c.date).order_by(deliveries.c.date)).mappings().all():
        bind.execute(deliveries.update().where(deliveries.c.id == row["id"]).values(
            date=row["date"] - timedelta(days=1)))
    with op.batch_alter_table('repo_commit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repo_commit_first_seen_at'))
        batch_op.drop_column('first_seen_at')
    with op.batch_alter_table('repository', schema=None) as batch_op:
        batch_op.drop_column('last_error_kind')
    with op.batch_alter_table('signup_request', schema=None) as batch_op:
        batch_op.drop_column('schedule')
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscriber_next_slot_at'))
        batch_op.drop_column('next_slot_at')
        batch_op.drop_column('weekday')
        batch_op.drop_constraint('frequency', type_='check')
        batch_op.drop_column('frequency')
        batch_op.drop_column('hour')
        batch_op.drop_column('timezone')
