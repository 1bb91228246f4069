"""Federated experiments, their rounds, and trained models with signed manifests.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contract_id", sa.String(length=63), nullable=False),
        sa.Column("contract_version", sa.String(length=64), nullable=False),
        sa.Column("contract_sha256", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("participants", sa.Text(), nullable=False),
        sa.Column("flower_run_id", sa.String(length=20), nullable=True),
        sa.Column("run_token_hash", sa.String(length=64), nullable=False),
        sa.Column("rounds_completed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_experiments_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("run_token_hash", name=op.f("uq_experiments_run_token_hash")),
    )
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_experiments_contract_id"), ["contract_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_experiments_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiments_status"), ["status"], unique=False)

    op.create_table(
        "experiment_rounds",
        sa.Column("experiment_id", sa.String(length=40), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("checkpoint_key", sa.String(length=300), nullable=True),
        sa.Column("checkpoint_sha256", sa.String(length=64), nullable=True),
        sa.Column("checkpoint_version_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_rounds_experiment_id_experiments"),
        ),
        sa.PrimaryKeyConstraint("experiment_id", "round", name=op.f("pk_experiment_rounds")),
    )
    op.create_table(
        "models",
        sa.Column("experiment_id", sa.String(length=40), nullable=False),
        sa.Column("weights_key", sa.String(length=300), nullable=False),
        sa.Column("weights_sha256", sa.String(length=64), nullable=False),
        sa.Column("weights_version_id", sa.String(length=200), nullable=True),
        sa.Column("manifest_key", sa.String(length=300), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("manifest_version_id", sa.String(length=200), nullable=True),
        sa.Column("signature_key", sa.String(length=300), nullable=False),
        sa.Column("signature_sha256", sa.String(length=64), nullable=False),
        sa.Column("signature_version_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name=op.f("fk_models_experiment_id_experiments")
        ),
        sa.PrimaryKeyConstraint("experiment_id", name=op.f("pk_models")),
    )


def downgrade() -> None:

    op.drop_table("models")
    op.drop_table("experiment_rounds")
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiments_status"))
        batch_op.drop_index(batch_op.f("ix_experiments_org_id"))
        batch_op.drop_index(batch_op.f("ix_experiments_contract_id"))

    op.drop_table("experiments")
