"""Cluster tables: live instances, vehicle ownership leases, and leader leases for singletons.

A lease is a row with an owner, an epoch and an expiry set by the database's clock (``now()``), so the
instances' own clocks never decide who owns what. The epoch rises by one on every change of owner; it is the
fencing token a command is checked against (see ``mission.cluster.leases.fence``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel


class ClusterInstance(SQLModel, table=True):
    """One running service instance; alive while ``expires_at`` is in the future."""

    __tablename__ = "cluster_instances"

    instance_id: str = Field(primary_key=True, max_length=64)
    base_url: str = Field(default="", max_length=200)  # where other instances forward commands
    started_at: datetime = Field(sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)


class VehicleLease(SQLModel, table=True):
    """Who links, commands, supervises and reconciles a vehicle."""

    __tablename__ = "vehicle_leases"

    vehicle_id: int = Field(primary_key=True, foreign_key="vehicles.id")
    owner: str = Field(max_length=64, index=True)
    epoch: int = Field(default=1)
    acquired_at: datetime = Field(sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))


class LeaderLease(SQLModel, table=True):
    """One singleton (patrol scheduler, overwatch, event runner) and the instance that runs it."""

    __tablename__ = "leader_leases"

    name: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=64)
    epoch: int = Field(default=1)
    acquired_at: datetime = Field(sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
