"""The spam filters through the classifier suite in the training environment: a
silver-shaped table of real pseudonymised messages (partitioned by date, the split and
the label by name in columns), both filters compared on the same test messages with
intervals and paired tests, chosen on validation F1 of spam; no message text nor sender
in the results or the report; the read of personal data audited."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from mail_messages import silver_rows, write_silver

LIMIT = 150  # messages per corpus group: 750 in all


@pytest.fixture(scope="module")
def mail_table(moulin_env, tmp_path_factory) -> dict:
    import pandas as pd

    from moulin.settings import load_settings

    home = tmp_path_factory.mktemp("mail-home")
    settings = replace(load_settings(), home=home, warehouse_uri=(home / "warehouse").as_uri())
    rows = silver_rows(settings, LIMIT)
    return {"settings": settings, "uri": write_silver(settings, rows), "frame": pd.DataFrame(rows)}


@pytest.fixture(scope="module")
def trained(mail_table) -> dict:
    from moulin.usecases.mail.params import PARAMS
    from moulin.usecases.mail.training import train_mail

    params = replace(PARAMS, bootstrap_resamples=200)
    summary = train_mail(None, mail_table["settings"], params=params, run_id="test-run")
    results = json.loads(Path(summary["results_uri"].removeprefix("file://")).read_text())
    return {"summary": summary, "results": results}


def test_both_filters_are_compared_with_intervals_and_chosen_on_spam_f1(trained, mail_table) -> None:
    results, frame = trained["results"], mail_table["frame"]
    assert results["format"] == "moulin.classification-results/1"
    assert results["class_names"] == ["ham", "spam"]
    test = frame[frame["split"] == "test"]
    assert results["split_rows"] == frame["split"].value_counts().to_dict()
    models = {m["model"]: m for m in results["models"]}
    assert set(models) == {"text", "text_sender"}
    for m in models.values():
        assert m["test"]["n"] == len(test)
        support = {pc["class"]: pc["support"] for pc in m["test"]["per_class"]}
        assert support == test["label"].value_counts().to_dict()
        for name in ("f1", "precision", "recall", "roc_auc", "pr_auc", "accuracy"):
            lo, hi = m["test"]["intervals"][name]
            assert lo <= m["test"][name] <= hi, (m["model"], name)
        assert m["test"]["roc_auc"] > 0.9 and m["test"]["f1"] > 0.8, m["model"]
        assert m["model_uri"] == ""  # the fitted filters are not kept
    assert models["text_sender"]["params"]["sender_weight"] in (0.1, 0.3, 1.0)
    chosen = max(models, key=lambda n: models[n]["validation"]["f1"])
    assert results["selection"] == {"split": "validation", "metric": "f1", "recommended": chosen}
    assert trained["summary"]["recommended"] == chosen
    (pair,) = results["comparisons"]
    assert {pair["a"], pair["b"]} == set(models) and "p_adjusted" in pair and "mcnemar" in pair
    assert results["duplicates"]["train_and_test"] == 0  # split by content: copies share a split


def test_results_and_report_hold_no_message_text_nor_sender(trained, mail_table) -> None:
    from moulin.reporting.classification import render_classification_report
    from moulin.usecases.mail.report import WORDING

    results, frame = trained["results"], mail_table["frame"]
    stored = json.dumps(results)
    html = render_classification_report(results, WORDING)
    senders = set(frame["from_address"].dropna())
    subjects = {s for s in frame["subject"].dropna() if len(s) > 25}
    for text in (stored, html):
        assert not any(s in text for s in senders)
        assert not any(s in text for s in subjects)
    examples = results["worst_test_examples"]["examples"]
    assert all(e["text"] == f"message id {e['key']}" for e in examples)  # the id, nothing of the message
    assert {e["key"] for e in examples} <= set(frame["message_id"].astype(str))
    assert "Their subject, text and sender are not shown" in html


def test_the_training_read_of_personal_data_is_audited(trained, mail_table) -> None:
    from moulin.privacy.audit import read_audit
    from moulin.settings import load_settings

    reads = [r for r in read_audit(load_settings()) if r["table_uri"] == mail_table["uri"]]
    assert reads and reads[-1]["action"] == "read"
    assert {"from_address", "subject", "body", "message_id"} <= set(reads[-1]["columns"].split(","))


def test_a_label_outside_the_classes_is_a_data_error(moulin_env, tmp_path) -> None:
    from moulin.errors import DataError
    from moulin.settings import load_settings
    from moulin.usecases.mail.training import train_mail

    settings = replace(load_settings(), home=tmp_path, warehouse_uri=(tmp_path / "warehouse").as_uri())
    rows = [
        {"message_id": f"m{i}", "from_address": "ps_x", "to_addresses": None, "n_recipients": 1,
         "subject": "s", "body": f"body {i}", "label": ("spam", "ham", "phish")[i % 3],
         "split": ("train", "validation", "test")[i % 3 - 1], "ds": "2002-10-10"}
        for i in range(30)
    ]  # fmt: skip
    write_silver(settings, rows)
    with pytest.raises(DataError, match=r"\['phish'\] are none of the classes \['ham', 'spam'\]"):
        train_mail(None, settings, run_id="bad-labels")


def test_a_suite_split_by_column_takes_no_network() -> None:
    from moulin.training.classifiers import ClassifierSuite

    with pytest.raises(ValueError, match="partition the table by split"):
        ClassifierSuite(
            use_case="x", contract="silver_mail", key="k", columns=("k", "label"), class_names=("a", "b"),
            baselines={}, networks=lambda frames: {}, network_names=("net",), splits="column",
        )  # fmt: skip


def test_every_row_read_lands_in_a_split_or_the_read_fails(mail_table, tmp_path) -> None:
    """Read whole, the three splits hold every row of the table; a row whose split is none
    of them fails the read, naming its value, instead of leaving training unseen."""
    from moulin.training import TrainingDataError
    from moulin.training.classifiers import read_frames
    from moulin.usecases.mail.training import suite

    settings = mail_table["settings"]
    _, frames = read_frames(settings, suite(settings), mail_table["uri"])
    assert sum(len(f) for f in frames.values()) == len(mail_table["frame"])

    other = replace(settings, home=tmp_path, warehouse_uri=(tmp_path / "warehouse").as_uri())
    rows = mail_table["frame"].to_dict("records")
    rows[0] = {**rows[0], "split": "holdout"}
    uri = write_silver(other, rows)
    with pytest.raises(TrainingDataError, match=r"1 row\(s\) with split \['holdout'\]"):
        read_frames(other, suite(other), uri)
