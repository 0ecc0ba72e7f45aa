"""Several service instances sharing one fleet: identity, vehicle leases with fencing, leader locks.

PostgreSQL holds the state (``models``); ``leases`` are its statements; ``keeper.Cluster`` runs them for one
instance. SQLite stays the single-instance default and refuses a second instance (``single``).
"""

from mission.cluster.keeper import Cluster, ClusterConfig, default_instance_id
from mission.cluster.leases import Lease, StaleOwner

__all__ = ["Cluster", "ClusterConfig", "Lease", "StaleOwner", "default_instance_id"]
