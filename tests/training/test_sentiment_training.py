"""Text classifiers end to end in the training environment: a silver-shaped Delta table
of real labelled posts (a sample spread through the corpus), TF-IDF + logistic
regression, the word CNN and fine-tuned MiniLM (both through the one DDP trainer),
compared on the same test rows and chosen on validation macro-F1."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from moulin.settings import load_settings
from moulin.training.classification_results import ClassificationResults

POSTS = 1200


@pytest.fixture(scope="module")
def posts_table(tmp_path_factory) -> dict:
    import pandas as pd
    import pyarrow as pa
    from deltalake import write_deltalake

    from moulin.usecases.sentiment.corpus import corpus_file
    from moulin.usecases.sentiment.params import CLASS_NAMES

    home = tmp_path_factory.mktemp("sentiment-home")
    settings = replace(load_settings(), home=home, warehouse_uri=(home / "warehouse").as_uri())
    _, *rows = csv.reader(
        io.StringIO(corpus_file(load_settings()).read_bytes().decode("latin-1"), newline="")
    )
    rows = rows[:: len(rows) // POSTS][:POSTS]
    records = []
    for label, confidence, text in rows:
        post_id = hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()
        bucket = int(post_id[:8], 16) % 100
        split = "train" if bucket < 60 else "validation" if bucket < 80 else "test"
        records.append(
            (post_id, text, CLASS_NAMES.index(label), label, float(confidence or "nan"), split, "2016-08-04")
        )
    frame = pd.DataFrame(
        records, columns=["post_id", "text", "label", "label_name", "confidence", "split", "ds"]
    )
    frame["label"] = frame["label"].astype("int32")
    uri = settings.table_uri("silver", "sentiment_posts")
    for part in np.array_split(frame.sample(frac=1.0, random_state=0), 4):
        write_deltalake(
            uri, pa.Table.from_pandas(part, preserve_index=False), mode="append", partition_by=["split"]
        )
    return {"settings": settings, "uri": uri, "frame": frame}


@pytest.fixture(scope="module")
def trained(posts_table, spark) -> dict:
    from moulin.training.classifiers import run_suite
    from moulin.usecases.sentiment.params import PARAMS
    from moulin.usecases.sentiment.training import suite

    settings = posts_table["settings"]
    params = replace(PARAMS, minilm_epochs=1, cnn_epochs=4, bootstrap_resamples=300)
    summary = run_suite(spark, settings, suite(settings, params), params.models, num_processes=2)
    results = json.loads(Path(summary["results_uri"].removeprefix("file://")).read_text())
    return {"summary": summary, "results": results}


def test_three_model_families_chosen_on_validation_macro_f1(trained, posts_table) -> None:
    results = trained["results"]
    models = {m["model"]: m for m in results["models"]}
    assert set(models) == {"tfidf_logreg", "text_cnn", "minilm"}
    n_test = int((posts_table["frame"]["split"] == "test").sum())
    for m in models.values():
        assert m["test"]["n"] == n_test and sum(map(sum, m["test"]["confusion"])) == n_test
        assert m["test"]["macro_f1"] > 0.3, m["model"]  # three classes; majority-class guessing gives ~0.2
        lo, hi = m["test"]["intervals"]["macro_f1"]
        assert lo <= m["test"]["macro_f1"] <= hi
    chosen = max(models, key=lambda n: models[n]["validation"]["macro_f1"])
    assert results["selection"] == {"split": "validation", "metric": "macro_f1", "recommended": chosen}
    assert (
        models["minilm"]["n_parameters"] > 20_000_000 and models["text_cnn"]["training"]["train"]["history"]
    )
    assert len(results["comparisons"]) == 3 and all("mcnemar" in c for c in results["comparisons"])
    # the file reads as the typed results and writes back the same bytes
    text = Path(trained["summary"]["results_uri"].removeprefix("file://")).read_bytes()
    assert ClassificationResults.from_json(text).to_json() == text


def test_most_confidently_wrong_posts_are_kept_for_the_report(trained, posts_table) -> None:
    results = trained["results"]
    worst = results["worst_test_examples"]
    texts = dict(zip(posts_table["frame"]["post_id"], posts_table["frame"]["text"], strict=False))
    assert worst["model"] == results["selection"]["recommended"] and worst["examples"]
    confidences = [e["confidence"] for e in worst["examples"]]
    assert confidences == sorted(confidences, reverse=True)
    assert all(e["text"] == texts[e["key"]] and e["true"] != e["predicted"] for e in worst["examples"])
