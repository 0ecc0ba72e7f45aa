"""flights: every vehicle movement that is not an uploaded mission, persisted with its legs

Revision ID: 0003_flights
Revises: 0002_security
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = "0003_flights"
down_revision: str | Sequence[str] | None = "0002_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flights",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("legs", sa.JSON(), nullable=False),
        sa.Column("leg_index", sa.Integer(), nullable=False),
        sa.Column("airborne", sa.Boolean(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("mission_id", sa.Integer(), nullable=True),
        sa.Column("relieves_vehicle_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["mission_id"], ["missions.id"]),
        sa.ForeignKeyConstraint(["relieves_vehicle_id"], ["vehicles.id"]),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicles.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_flights_vehicle_id", "flights", ["vehicle_id"])
    op.create_index("ix_flights_state", "flights", ["state"])
    op.create_index("ix_flights_incident_id", "flights", ["incident_id"])
    op.create_index(
        "ux_flights_open_vehicle",
        "flights",
        ["vehicle_id"],
        unique=True,
        sqlite_where=sa.text("state IN ('pending', 'active')"),
        postgresql_where=sa.text("state IN ('pending', 'active')"),
    )


def downgrade() -> None:
    op.drop_index("ux_flights_open_vehicle", table_name="flights")
    op.drop_index("ix_flights_incident_id", table_name="flights")
    op.drop_index("ix_flights_state", table_name="flights")
    op.drop_index("ix_flights_vehicle_id", table_name="flights")
    op.drop_table("flights")
