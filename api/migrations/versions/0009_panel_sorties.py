"""panel: sorties (take-off to landing with the charge at both ends) for battery cycles

Revision ID: 0009_panel_sorties
Revises: 0008_fleet_scale
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_panel_sorties"
down_revision: str | Sequence[str] | None = "0008_fleet_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sorties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("took_off_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_pct", sa.Float(), nullable=True),
        sa.Column("landed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_pct", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicles.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sorties", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sorties_took_off_at"), ["took_off_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sorties_vehicle_id"), ["vehicle_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sorties", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sorties_vehicle_id"))
        batch_op.drop_index(batch_op.f("ix_sorties_took_off_at"))
    op.drop_table("sorties")
