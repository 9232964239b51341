"""The image source on real Spark and Delta: IDX files landed, gated into bronze with
every image accounted for (a cut file's lost image quarantined with its reason),
split and hashed in silver; then the DAGs run through Airflow to the report."""

from __future__ import annotations

import gzip
import shutil
from dataclasses import replace

import pytest

from moulin.delta import DeltaTableStore
from moulin.ingest.idx import read_header

LIMIT = 200  # images per official set

pytestmark = pytest.mark.skipif(
    not __import__("pathlib").Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="bin/setup installs dataset-fashion-mnist",
)


@pytest.fixture(scope="module")
def fashion(spark, settings, tmp_path_factory):
    from moulin.usecases.fashion.usecase import USECASE
    from moulin.usecases.kit.chain import ingest

    home = tmp_path_factory.mktemp("fashion-home")
    local = replace(settings, home=home, warehouse_uri=(home / "warehouse").as_uri())
    return local, ingest(USECASE, spark, local, limit=LIMIT, say=print)


def test_every_image_is_accounted_for(fashion) -> None:
    settings, out = fashion
    gate = out["bronze"]
    assert gate["rows_manifest"] == gate["rows_read"] == gate["rows_bronze"] == 2 * LIMIT
    store = DeltaTableStore()
    bronze = store.to_pandas(settings.table_uri("bronze", "fashion_images"))
    assert len(bronze) == 2 * LIMIT and set(bronze["pixels"].map(len)) == {784}
    assert set(bronze["height"]) == {28} and bronze["label"].between(0, 9).all()
    silver = store.to_pandas(settings.table_uri("silver", "fashion_images"))
    assert out["silver"]["rows"] == len(silver) == 2 * LIMIT
    assert (silver["split"] == "test").sum() == LIMIT and set(silver["split"]) == {
        "train",
        "validation",
        "test",
    }
    # the split follows the content: copies of an image never straddle train and validation
    assert (
        silver.groupby("image_sha256")["split"].nunique().max() == 1
        or out["silver"]["duplicates"]["across_splits"]
    )
    drop = settings.home / "drops" / "fashion" / "2017-08-25" / "train-labels-idx1-ubyte.gz"
    labels = gzip.decompress(drop.read_bytes())[8:]
    by_id = silver.set_index("image_id")
    assert [int(by_id.loc[f"train-{i}", "label"]) for i in range(LIMIT)] == list(labels)
    assert by_id.loc["train-0", "label_name"] == "Ankle boot"  # label 9 in the official files


def test_a_cut_file_quarantines_its_lost_image(fashion, spark) -> None:
    from moulin.sources.bronze import gate_landing
    from moulin.sources.land import land_source
    from moulin.sources.spec import load_spec

    settings, _ = fashion
    source = settings.home / "drops" / "fashion" / "2017-08-25"
    drop = settings.home / "drops" / "fashion" / "2017-09-01"
    shutil.copytree(source, drop)
    images = drop / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(images.read_bytes())
    assert read_header(raw).dims == (LIMIT, 28, 28)
    images.write_bytes(gzip.compress(raw[:-300]))  # the last image loses 300 of its 784 bytes
    spec = load_spec("fashion")
    land_source(settings, spec, "2017-09-01", redelivery=True)  # the other three files are the same bytes
    outcome = gate_landing(spark, settings, spec, "2017-09-01", run_ge=False).as_dict()
    assert outcome["rows_manifest"] == outcome["rows_read"] == 2 * LIMIT
    assert outcome["rows_quarantined"] == 1 and outcome["rows_bronze"] == 2 * LIMIT - 1
    quarantine = DeltaTableStore().to_pandas(settings.table_uri("quarantine", "fashion"))
    row = quarantine[quarantine["ds"] == "2017-09-01"].iloc[0]
    assert "484 of 784 pixel bytes" in row["reason"] and row["source_file"].endswith(
        "t10k-images-idx3-ubyte.gz"
    )


def test_fashion_dags_run_to_the_report(settings, tmp_path) -> None:
    from moulin.orchestration import DagTest, ensure_airflow_db, run_dag_tests
    from moulin.storage import WarehouseFS
    from moulin.usecases.fashion.corpus import prepare_drop

    prepare_drop(settings, limit=150)
    ensure_airflow_db(settings)
    said: list[str] = []
    runs = [
        DagTest("source_fashion", "2017-08-25"),
        DagTest("fashion_images", "2017-08-25", conf={"models": "logreg"}),
    ]
    run_dag_tests(settings, runs, tmp_path, said.append)
    fs = WarehouseFS(settings)
    runs_dir = settings.table_uri("models", "fashion")
    (run,) = [i.uri for i in fs.list(runs_dir) if i.is_dir]
    page = fs.read_bytes(f"{run}/report.html").decode()
    assert "chosen on the validation" in page and "data:image/png;base64," in page
    assert "Ankle boot" in page and "http://" not in page and "https://" not in page
