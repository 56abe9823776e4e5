"""Click and open counts: one counter per (edition, post) for `[tracking] clicks`, one per
edition for `[tracking] opens`.

Revision ID: 0003c
Revises: 0003a
Create Date: 2026-12-03 17:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003c"
down_revision: str | Sequence[str] | None = "0003a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "clicks",
        sa.Column("edition", sa.String(), nullable=False),
        sa.Column("post_key", sa.String(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_key"],
            ["posts.key"],
        ),
        sa.PrimaryKeyConstraint("edition", "post_key"),
    )
    op.create_table(
        "opens",
        sa.Column("edition", sa.String(), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("edition"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("opens")
    op.drop_table("clicks")
