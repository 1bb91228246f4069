"""Runs that resume after their SuperLink is lost: the run's spec and its restarts.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_spec", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("restarts", sa.Text(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("restarts")
        batch_op.drop_column("run_spec")
