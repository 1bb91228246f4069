"""Models name the factories whose updates they hold (contributors), not only the invitees.

Revision ID: 0006
Revises: 0005
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("contributors", sa.Text(), nullable=False, server_default="[]")
        )
    # Models sealed before: the factories that trained in their recorded rounds.
    bind = op.get_bind()
    models = bind.execute(sa.text("SELECT experiment_id FROM models")).scalars().all()
    for experiment_id in models:
        reports = bind.execute(
            sa.text("SELECT report FROM experiment_rounds WHERE experiment_id = :id"),
            {"id": experiment_id},
        ).scalars()
        orgs: set[str] = set()
        for report in reports:
            if report:
                orgs |= {f["org"] for f in json.loads(report).get("train_factories", [])}
        bind.execute(
            sa.text("UPDATE models SET contributors = :c WHERE experiment_id = :id"),
            {"c": json.dumps(sorted(orgs)), "id": experiment_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("contributors")
