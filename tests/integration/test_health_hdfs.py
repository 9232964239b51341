import pytest

from moulin.health import check_warehouse
from moulin.storage import WarehouseFS

pytestmark = pytest.mark.integration


def test_warehouse_round_trip_on_hdfs(hdfs_cluster, hdfs_settings) -> None:
    result = check_warehouse(hdfs_settings)
    assert result["warehouse"].startswith("hdfs://")
    fs = WarehouseFS(hdfs_settings)
    assert [f for f in fs.list(hdfs_settings.table_uri("_health")) if "probe-" in f.uri] == []
