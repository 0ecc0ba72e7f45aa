"""high availability: cluster instances, vehicle leases, leader leases

Revision ID: 0006_ha
Revises: 0005_events
Create Date: 2026-12-06 18:10:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate renders sqlmodel.sql.sqltypes.AutoString)


# revision identifiers, used by Alembic.
revision: str = '0006_ha'
down_revision: Union[str, Sequence[str], None] = '0005_events'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('cluster_instances',
    sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('base_url', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('instance_id')
    )
    with op.batch_alter_table('cluster_instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cluster_instances_expires_at'), ['expires_at'], unique=False)

    op.create_table('leader_leases',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('vehicle_leases',
    sa.Column('vehicle_id', sa.Integer(), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['vehicle_id'], ['vehicles.id'], ),
    sa.PrimaryKeyConstraint('vehicle_id')
    )
    with op.batch_alter_table('vehicle_leases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vehicle_leases_owner'), ['owner'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('vehicle_leases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vehicle_leases_owner'))

    op.drop_table('vehicle_leases')
    op.drop_table('leader_leases')
    with op.batch_alter_table('cluster_instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cluster_instances_expires_at'))

    op.drop_table('cluster_instances')
