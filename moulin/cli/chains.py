"""What the commands that run a whole chain from the shell share."""

from __future__ import annotations

from moulin.cluster.local import LocalCluster
from moulin.settings import Settings


def start_local_cluster(settings: Settings) -> None:
    """Start the local HDFS cluster first on profile hdfs-local (each step printed); else nothing."""
    if settings.profile == "hdfs-local":
        LocalCluster(settings, log=lambda m: print(f"  cluster: {m}")).up()
