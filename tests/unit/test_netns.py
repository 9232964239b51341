"""Hosts as network namespaces (moulin.cluster.netns): addresses, names, reachability
between hosts only, a cable pulled and put back, and nothing left after removal."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading

import pytest

from moulin.cluster import netns

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="network namespaces need root and iproute2"
)


def _ours(stem: str) -> dict[str, list[str]]:
    """What of a network named ``stem...`` exists on this machine."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {
        "namespaces": netns.namespaces_with(stem),
        "links": [line for line in links.splitlines() if stem in line],
        "etc": [p.name for p in netns.NETNS_ETC_DIR.glob(f"{stem}*")] if netns.NETNS_ETC_DIR.is_dir() else [],
    }


def test_plan_gives_each_role_an_address_of_the_subnet_and_a_name_of_the_run() -> None:
    network = netns.plan(["namenode", "datanode-0", "datanode-1", "driver"], run_id="abc123")
    assert [h.address for h in network.hosts] == [f"198.51.100.{i}" for i in (10, 11, 12, 13)]
    assert network.host("datanode-1").hostname == "datanode-1.mlnabc123.moulin.test"
    assert [h.namespace for h in network.hosts] == [
        "mlnabc123-nn",
        "mlnabc123-dn0",
        "mlnabc123-dn1",
        "mlnabc123-drv",
    ]
    assert all(len(h.namespace) < 16 for h in network.hosts)
    assert "198.51.100.11 datanode-0.mlnabc123.moulin.test datanode-0" in network.hosts_file()
    assert netns.Network.from_json(network.to_json()) == network
    with pytest.raises(netns.NetworkError, match="no host 'kdc'"):
        network.host("kdc")
    with pytest.raises(netns.NetworkError, match="no room"):
        netns.plan([f"datanode-{i}" for i in range(10)], subnet="198.51.100.0/28")


def test_two_plans_never_share_names() -> None:
    stems = {netns.plan(["driver"]).stem for _ in range(50)}
    assert len(stems) == 50


@needs_root
def test_hosts_reach_each_other_by_name_a_pulled_cable_or_cut_path_parts_them_and_removal_leaves_nothing() -> (
    None
):
    network = netns.plan(["namenode", "datanode-0", "driver"], owner_pid=os.getpid())
    server = None
    try:
        netns.create(network)
        nn, drv = network.host("namenode"), network.host("driver")
        # The machine's own namespace has no address or link of the network.
        assert _ours(network.stem)["links"] == []
        own = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        assert "198.51.100." not in own
        # A host resolves the others' names through its own hosts file.
        found = subprocess.run(
            [*network.exec_prefix("driver"), "getent", "hosts", nn.hostname],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        assert found.stdout.split()[0] == nn.address

        listening = threading.Event()

        def listen() -> socket.socket:
            sock = socket.create_server((nn.address, 7000))
            sock.settimeout(10)
            listening.set()
            return sock

        server = netns.in_namespace(nn.namespace, listen)

        def connect(timeout: float) -> str:
            with socket.create_connection((nn.address, 7000), timeout=timeout) as sock:
                return sock.getsockname()[0]

        assert netns.in_namespace(drv.namespace, lambda: connect(5)) == drv.address
        server.accept()[0].close()
        netns.set_link(network, "namenode", up=False)
        with pytest.raises(OSError):
            netns.in_namespace(drv.namespace, lambda: connect(2))
        netns.set_link(network, "namenode", up=True)
        assert netns.in_namespace(drv.namespace, lambda: connect(10)) == drv.address
        server.accept()[0].close()
        # A cut path drops driver <-> NameNode only: a DataNode still reaches the NameNode.
        netns.cut_path(network, "driver", "namenode")
        with pytest.raises(OSError):
            netns.in_namespace(drv.namespace, lambda: connect(2))
        dn = network.host("datanode-0")
        assert netns.in_namespace(dn.namespace, lambda: connect(5)) == dn.address
        server.accept()[0].close()
        netns.cut_path(network, "driver", "namenode", cut=False)
        assert netns.in_namespace(drv.namespace, lambda: connect(10)) == drv.address
    finally:
        if server is not None:
            server.close()
        netns.destroy(network)
    assert _ours(network.stem) == {"namespaces": [], "links": [], "etc": []}
    assert network.stem not in netns.leftovers()


@needs_root
def test_a_network_whose_owner_died_is_a_leftover_and_is_removed() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    network = netns.plan(["driver"], owner_pid=dead.pid)
    netns.create(network)
    try:
        sleeper = subprocess.Popen([*network.exec_prefix("driver"), "sleep", "60"])
        assert network.stem in netns.leftovers()
        removed = netns.remove_leftovers()
        assert f"namespace {network.host('driver').namespace}" in removed
        assert sleeper.wait(timeout=20) != 0  # ended with its namespace
    finally:
        netns.destroy(network)
    assert _ours(network.stem) == {"namespaces": [], "links": [], "etc": []}
