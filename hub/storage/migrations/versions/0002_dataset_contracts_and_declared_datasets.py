"""Dataset contract versions, their column index, and declared datasets.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "contract_columns",
        sa.Column("contract_id", sa.String(length=63), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=500), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("contract_id", "version", "name", name=op.f("pk_contract_columns")),
    )
    with op.batch_alter_table("contract_columns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contract_columns_name"), ["name"], unique=False)

    op.create_table(
        "contract_versions",
        sa.Column("contract_id", sa.String(length=63), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("owner_org", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("domain", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.Column("document_key", sa.String(length=300), nullable=False),
        sa.Column("document_version_id", sa.String(length=200), nullable=True),
        sa.Column("schema_sha256", sa.String(length=64), nullable=False),
        sa.Column("schema_key", sa.String(length=300), nullable=False),
        sa.Column("schema_version_id", sa.String(length=200), nullable=True),
        sa.Column("signature_sha256", sa.String(length=64), nullable=True),
        sa.Column("signature_key", sa.String(length=300), nullable=True),
        sa.Column("signature_version_id", sa.String(length=200), nullable=True),
        sa.Column("compatibility", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("submitted_by", sa.String(length=64), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_org"],
            ["organizations.id"],
            name=op.f("fk_contract_versions_owner_org_organizations"),
        ),
        sa.PrimaryKeyConstraint("contract_id", "version", name=op.f("pk_contract_versions")),
    )
    with op.batch_alter_table("contract_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contract_versions_domain"), ["domain"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_contract_versions_owner_org"), ["owner_org"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_contract_versions_status"), ["status"], unique=False)

    op.create_table(
        "declared_datasets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("contract_id", sa.String(length=63), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("declared_by", sa.String(length=64), nullable=False),
        sa.Column("declared_at", sa.DateTime(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("compliant", sa.Boolean(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_declared_datasets_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_declared_datasets")),
        sa.UniqueConstraint(
            "contract_id",
            "version",
            "org_id",
            "name",
            name=op.f("uq_declared_datasets_contract_id"),
        ),
    )
    with op.batch_alter_table("declared_datasets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_declared_datasets_contract_id"), ["contract_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_declared_datasets_org_id"), ["org_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("declared_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_declared_datasets_org_id"))
        batch_op.drop_index(batch_op.f("ix_declared_datasets_contract_id"))

    op.drop_table("declared_datasets")
    with op.batch_alter_table("contract_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_versions_status"))
        batch_op.drop_index(batch_op.f("ix_contract_versions_owner_org"))
        batch_op.drop_index(batch_op.f("ix_contract_versions_domain"))

    op.drop_table("contract_versions")
    with op.batch_alter_table("contract_columns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_columns_name"))

    op.drop_table("contract_columns")
