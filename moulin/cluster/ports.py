"""Free ports for a private local HDFS (tests, benchmarks) beside any other cluster."""

from __future__ import annotations

import random
import socket


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` on ``host`` can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_hdfs_port_env(datanodes: int = 3, attempts: int = 200) -> dict[str, str]:
    """``MOULIN_HDFS_*`` port settings of a block where every NameNode and DataNode port is free."""
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(20000, 40000, 100)
        ports = [base, base + 1] + [base + 10 + 10 * i + k for i in range(datanodes) for k in range(3)]
        if all(port_free(p) for p in ports):
            return {
                "MOULIN_HDFS_NAMENODE_RPC_PORT": str(base),
                "MOULIN_HDFS_NAMENODE_HTTP_PORT": str(base + 1),
                "MOULIN_HDFS_DATANODE_BASE_PORT": str(base + 10),
            }
    raise RuntimeError("no free block of ports for a local HDFS between 20000 and 40000")
