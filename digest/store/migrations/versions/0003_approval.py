"""Approval: editions composed as drafts (the `drafts` table) and the `held` counter of
delivery rows that wait for the editor.

Revision ID: 0003a
Revises: 0002
Create Date: 2026-12-03 17:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003a"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "drafts",
        sa.Column("edition", sa.String(), nullable=False),
        sa.Column("schedule", sa.String(), nullable=True),
        sa.Column("period", sa.String(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("deadline", sa.String(length=32), nullable=True),
        sa.Column("notify", sa.String(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.Column("notified", sa.String(length=32), nullable=True),
        sa.Column("decided", sa.String(length=32), nullable=True),
        sa.Column("decided_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("edition"),
    )
    op.add_column(
        "digest_counts",
        sa.Column("held", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("digest_counts") as batch:
        batch.drop_column("held")
    op.drop_table("drafts")
