"""`moulin cluster up|down|status` as a user runs it, on its own ports and home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moulin.settings import load_settings

pytestmark = pytest.mark.integration


def _moulin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("moulin")
    return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=300)


def test_cli_up_twice_status_and_down_leaves_nothing_running(moulin_env, tmp_path, hdfs_cluster) -> None:
    # The session cluster holds the fixture's ports; shift this one's by 1000.
    env = dict(os.environ)
    env["MOULIN_HOME"] = str(tmp_path / "home")
    for key in (
        "MOULIN_HDFS_NAMENODE_RPC_PORT",
        "MOULIN_HDFS_NAMENODE_HTTP_PORT",
        "MOULIN_HDFS_DATANODE_BASE_PORT",
    ):
        env[key] = str(int(moulin_env[key]) + 1000)
    first = _moulin(env, "cluster", "up")
    assert first.returncode == 0, first.stderr
    assert "live datanodes: 3" in first.stdout
    second = _moulin(env, "cluster", "up")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("already running") == 4
    assert "started:" not in second.stdout
    status = _moulin(env, "cluster", "status")
    assert "live datanodes: 3" in status.stdout

    settings = load_settings("hdfs-local", env=env)
    pids = [int(p.read_text()) for p in (settings.cluster_dir / "pids").glob("*.pid")]
    assert len(pids) == 4
    down = _moulin(env, "cluster", "down")
    assert down.returncode == 0, down.stderr
    assert all(
        not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        for pid in pids
    )
    ours = subprocess.run(
        ["pgrep", "-f", f"moulin.daemon=.*@{settings.cluster_dir}"], capture_output=True, text=True
    )
    assert ours.stdout.strip() == ""
    assert "nothing of ours" in _moulin(env, "cluster", "down").stdout


def test_cli_up_from_an_empty_home_three_times_brings_every_datanode_up(moulin_env, tmp_path) -> None:
    # A first start writes every shared file (configs, web.xml) while daemons start:
    # it must come up cleanly each time, from a fresh home, on its own free ports.
    from moulin.cluster.ports import free_hdfs_port_env

    for attempt in range(3):
        env = dict(os.environ)
        env["MOULIN_HOME"] = str(tmp_path / f"home-{attempt}")
        env.update(free_hdfs_port_env())
        settings = load_settings("hdfs-local", env=env)
        try:
            up = _moulin(env, "cluster", "up")
            logs = "\n".join(
                f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                for p in sorted((settings.cluster_dir / "logs").glob("datanode-*"))
            )
            assert up.returncode == 0, f"attempt {attempt}: {up.stderr[-2000:]}\n{logs}"
            assert "live datanodes: 3" in up.stdout, f"attempt {attempt}: {up.stdout}"
            assert "Premature end of file" not in logs
        finally:
            down = _moulin(env, "cluster", "down")
        assert down.returncode == 0, down.stderr
        ours = subprocess.run(
            ["pgrep", "-f", f"moulin.daemon=.*@{settings.cluster_dir}"], capture_output=True, text=True
        )
        assert ours.stdout.strip() == ""
