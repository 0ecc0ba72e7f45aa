"""panel: each user's language; a patrol's own vehicle or dock

Revision ID: 0007_panel
Revises: 0006_ha
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = "0007_panel"
down_revision: str | Sequence[str] | None = "0006_ha"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
    with op.batch_alter_table("patrols", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vehicle_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("dock", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patrols", schema=None) as batch_op:
        batch_op.drop_column("dock")
        batch_op.drop_column("vehicle_id")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("locale")
