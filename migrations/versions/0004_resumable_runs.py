"""run states, private repositories, granted subscriptions, delivery retries

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 07:29:07.397042
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OLD_RUN_STATUS = sa.Enum('running', 'finished', name='run_status', native_enum=False, create_constraint=True,
                         length=20)
NEW_RUN_STATUS = sa.Enum('running', 'failed', 'done', name='run_status', native_enum=False, create_constraint=True,
                         length=20)


def upgrade() -> None:
    # A daily run is running, failed (resumable) or done; "finished" becomes "done".
    with op.batch_alter_table('daily_run', schema=None) as batch_op:
        batch_op.drop_constraint('run_status', type_='check')
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=True))
    op.execute("UPDATE daily_run SET status = 'done' WHERE status = 'finished'")
    with op.batch_alter_table('daily_run', schema=None) as batch_op:
        batch_op.create_check_constraint('run_status', "status IN ('running', 'failed', 'done')")

    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_delivery_next_attempt_at'), ['next_attempt_at'], unique=False)

    with op.batch_alter_table('repository', schema=None) as batch_op:
        batch_op.add_column(sa.Column('private', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.add_column(sa.Column('granted', sa.Boolean(), server_default=sa.false(), nullable=False))
    # Subscriptions made before this revision were all allowed by the rules of their time.
    op.execute("UPDATE subscription SET granted = true WHERE subscriber_id IN "
               "(SELECT subscriber_id FROM signup_request WHERE source = 'cli')")


def downgrade() -> None:
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_column('granted')

    with op.batch_alter_table('repository', schema=None) as batch_op:
        batch_op.drop_column('private')

    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_next_attempt_at'))
        batch_op.drop_column('next_attempt_at')

    with op.batch_alter_table('daily_run', schema=None) as batch_op:
        batch_op.drop_constraint('run_status', type_='check')
        batch_op.drop_column('error')
        batch_op.drop_column('attempts')
        batch_op.drop_column('heartbeat_at')
    op.execute("UPDATE daily_run SET status = 'finished' WHERE status IN ('done', 'failed')")
    with op.batch_alter_table('daily_run', schema=None) as batch_op:
        batch_op.create_check_constraint('run_status', "status IN ('running', 'finished')")
