from moulin.health import check_warehouse


def test_warehouse_round_trip_on_local_profile(settings) -> None:
    result = check_warehouse(settings)
    assert result["profile"] == "local"
    assert result["warehouse"].startswith("file://")
