"""The one-process DAG runner (``moulin.dagtests``) on DAGs that carry a deadline alert."""

from __future__ import annotations

import pytest

from moulin.orchestration import DagTest, ensure_airflow_db, run_dag_tests

pytestmark = pytest.mark.integration


def test_a_dag_with_a_deadline_alert_runs_to_success(hdfs_cluster, hdfs_settings, tmp_path) -> None:
    """``ops_hdfs_health`` declares a deadline alert, as ``flights_delay_model`` does: its run
    must end in success, not in Airflow's ``'dict' object has no attribute 'hex'``."""
    ensure_airflow_db(hdfs_settings)
    said: list[str] = []
    run_dag_tests(hdfs_settings, [DagTest("ops_hdfs_health", "2026-01-01", "health")], tmp_path, said.append)
    assert "done in" in said[-1], said
    log = (tmp_path / "ops_hdfs_health-2026-01-01.log").read_text()
    assert "'dict' object has no attribute 'hex'" not in log
