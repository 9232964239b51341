"""The text source on real Spark and Delta: the labelled posts (Latin-1 CSV with
RFC 4180 doubled quotes) landed and gated into bronze with every post accounted for,
a malformed line quarantined with its reason, silver split by content; then the
DAGs run through Airflow to the report."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest

from moulin.delta import DeltaTableStore

LIMIT = 3000  # posts spread through the corpus (some with doubled quotes)


@pytest.fixture(scope="module")
def sentiment(spark, settings, tmp_path_factory):
    from moulin.usecases.kit.chain import ingest
    from moulin.usecases.sentiment.usecase import USECASE

    home = tmp_path_factory.mktemp("sentiment-home")
    local = replace(settings, home=home, warehouse_uri=(home / "warehouse").as_uri())
    return local, ingest(USECASE, spark, local, limit=LIMIT, say=print)


def _posts(settings) -> list[list[str]]:
    data = (settings.home / "drops" / "sentiment" / "2016-08-04" / "posts.csv").read_bytes()
    return list(csv.reader(io.StringIO(data.decode("latin-1"), newline="")))[1:]


def test_every_post_is_accounted_for_and_quotes_are_read_as_csv_means(sentiment) -> None:
    settings, out = sentiment
    gate = out["bronze"]
    posts = _posts(settings)
    assert gate["rows_manifest"] == gate["rows_read"] == len(posts) == LIMIT
    assert gate["rows_quarantined"] == 0 and gate["rows_bronze"] == LIMIT
    bronze = DeltaTableStore().to_pandas(settings.table_uri("bronze", "sentiment_posts"))
    quoted = [p[2] for p in posts if '"' in p[2]]
    assert quoted and set(quoted) <= set(bronze["text"])  # doubled quotes undone, not quarantined
    assert bronze["confidence"].isna().sum() == sum(1 for p in posts if p[1] == "")
    silver = DeltaTableStore().to_pandas(settings.table_uri("silver", "sentiment_posts"))
    assert len(silver) == out["silver"]["rows"] == LIMIT
    assert silver.groupby("post_id")["split"].nunique().max() == 1  # copies share a split
    assert dict(zip(silver["label_name"], silver["label"], strict=True)) == {
        "negative": 0,
        "neutral": 1,
        "positive": 2,
    }
    shares = silver["split"].value_counts(normalize=True)
    assert 0.6 < shares["train"] < 0.8 and 0.1 < shares["test"] < 0.2


def test_a_malformed_line_is_quarantined_with_its_reason(sentiment, spark) -> None:
    from moulin.sources.bronze import gate_landing
    from moulin.sources.land import land_source
    from moulin.sources.spec import load_spec

    settings, _ = sentiment
    drop = settings.home / "drops" / "sentiment" / "2016-09-01"
    drop.mkdir(parents=True)
    source = (settings.home / "drops" / "sentiment" / "2016-08-04" / "posts.csv").read_bytes().split(b"\n")
    bad = [
        b'negative,0.8,"quoted, fine",and one field too many',
        b"happy,0.7,a label nobody uses",
        b"neutral,1.5,confidence above one",
    ]
    (drop / "posts.csv").write_bytes(b"\n".join(source[:201] + bad) + b"\n")  # header, 200 posts, 3 bad lines
    spec = load_spec("sentiment")
    land_source(settings, spec, "2016-09-01")
    outcome = gate_landing(spark, settings, spec, "2016-09-01", run_ge=False).as_dict()
    assert outcome["rows_manifest"] == outcome["rows_read"] == 203
    assert outcome["rows_bronze"] == 200 and outcome["rows_quarantined"] == 3
    q = DeltaTableStore().to_pandas(settings.table_uri("quarantine", "sentiment"))
    reasons = sorted(q[q["ds"] == "2016-09-01"]["reason"])
    assert any("does not have 3 fields" in r for r in reasons)
    assert any("happy" in r for r in reasons) and any("1.5" in r for r in reasons)


def test_sentiment_dags_run_to_the_report(settings, tmp_path) -> None:
    from moulin.orchestration import DagTest, ensure_airflow_db, run_dag_tests
    from moulin.storage import WarehouseFS
    from moulin.usecases.sentiment.corpus import prepare_drop

    prepare_drop(settings, limit=1500)
    ensure_airflow_db(settings)
    runs = [
        DagTest("source_sentiment", "2016-08-04"),
        DagTest("sentiment_posts", "2016-08-04", conf={"models": "tfidf_logreg"}),
    ]
    run_dag_tests(settings, runs, tmp_path, print)
    fs = WarehouseFS(settings)
    (run,) = [i.uri for i in fs.list(settings.table_uri("models", "sentiment")) if i.is_dir]
    page = fs.read_bytes(f"{run}/report.html").decode()
    assert "macro-F1" in page and "negative" in page
    # self-contained: nothing loaded from elsewhere (posts may quote links as text)
    assert not any(f'{attr}="http' in page for attr in ("src", "href"))
