"""fleet scale: a vehicle's sysid is unique on its connection, not in the whole fleet

Revision ID: 0008_fleet_scale
Revises: 0007_panel
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_fleet_scale"
down_revision: str | Sequence[str] | None = "0007_panel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.drop_index("ix_vehicles_sysid")
        batch_op.create_index("ix_vehicles_sysid", ["sysid"], unique=False)
        batch_op.create_index("uq_vehicles_url_sysid", ["connection_url", "sysid"], unique=True)


def downgrade() -> None:
    # Fails (as it must) while two vehicles share a sysid on different connections.
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.drop_index("uq_vehicles_url_sysid")
        batch_op.drop_index("ix_vehicles_sysid")
        batch_op.create_index("ix_vehicles_sysid", ["sysid"], unique=True)
