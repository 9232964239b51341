"""The image classification report (moulin.usecases.fashion.report): wording, tables, escaping, writing."""

from __future__ import annotations

import copy
import dataclasses
import html as html_lib
import re
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from moulin.reporting.classification import render_classification_report, write_classification_report
from moulin.reporting.images import png_data_uri
from moulin.settings import Settings
from moulin.usecases.fashion.report import FRAMING, WORDING

CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
PER_CLASS_TEST = 1000
PUBLISHED = [
    {"classifier": "Human Performance", "preprocessing": "Crowd-sourced evaluation", "accuracy": 0.835},
    {"classifier": "2 Conv+pooling", "preprocessing": "None", "accuracy": 0.876},
    {"classifier": "2 Conv+pooling", "preprocessing": "Normalization", "accuracy": 0.916},
    {"classifier": "HOG+SVM", "preprocessing": "HOG", "accuracy": 0.926},
    {"classifier": "ResNet18", "preprocessing": "Normalization, random flips", "accuracy": 0.949},
    {"classifier": "AutoML", "preprocessing": "None", "accuracy": 0.961},
]


def _evaluation(wrong: int, seed: int, names: list[str]) -> dict:
    """Test metrics of a synthetic classifier that gets exactly ``wrong`` of 10,000 test images wrong."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), PER_CLASS_TEST)
    pred = y.copy()
    rows = rng.choice(len(y), size=wrong, replace=False)
    pred[rows] = (y[rows] + rng.integers(1, 10, size=wrong)) % 10
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (y, pred), 1)
    per_class = []
    for i, name in enumerate(names):
        tp = confusion[i, i]
        precision = tp / confusion[:, i].sum()
        recall = tp / confusion[i].sum()
        per_class.append(
            {
                "class": name,
                "index": i,
                "support": int(confusion[i].sum()),
                "precision": float(precision),
                "recall": float(recall),
                "f1": float(2 * precision * recall / (precision + recall)),
            }
        )
    accuracy = float(np.mean(pred == y))
    macro_f1 = float(np.mean([pc["f1"] for pc in per_class]))
    return {
        "n": len(y),
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "ece": 0.018 + wrong / 1e5,
        "reliability": [
            {"lower": 0.8, "upper": 0.9, "count": 900, "mean_confidence": 0.86, "accuracy": 0.84},
            {"lower": 0.9, "upper": 1.0, "count": 8000, "mean_confidence": 0.97, "accuracy": 0.96},
        ],
        "log_loss": 0.2 + wrong / 5000,
        "intervals": {
            "accuracy": [accuracy - 0.005, accuracy + 0.005],
            "macro_f1": [macro_f1 - 0.006, macro_f1 + 0.006],
        },
    }


def _history(epochs: int, start_loss: float, start_acc: float) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": start_loss / e,
            "val_loss": start_loss / e + 0.05 * (e > epochs - 1),
            "val_logloss": start_loss / e,
            "train_rows": 54000,
            "val_accuracy": min(0.99, start_acc + 0.01 * e),
            "seconds": 30.0,
            "data_wait_seconds": 3.0,
            "learning_rate": 0.002,
        }
        for e in range(1, epochs + 1)
    ]


def make_results(names: list[str] | None = None) -> dict:
    """A realistic results.json: cnn wins on validation, efficientnet_lite0 on test (not significantly)."""
    names = list(names or CLASSES)
    logreg = _evaluation(1580, 1, names)
    cnn = _evaluation(690, 2, names)
    effnet = _evaluation(650, 3, names)
    models = [
        {
            "model": "logreg",
            "family": "logistic regression on pixels (scikit-learn, C chosen on validation)",
            "validation": {"accuracy": 0.851, "macro_f1": 0.849},
            "test": logreg,
            "train_seconds": 95.0,
            "n_parameters": 7850,
            "predict_rows_per_s": 250000.0,
            "params": {"C": 0.1, "max_iter": 300},
            "model_uri": "file:///warehouse/models/fashion/run-1/logreg/model.skops",
        },
        {
            "model": "cnn",
            "family": "CNN from scratch (3 conv blocks, batch norm; DDP via TorchDistributor)",
            "validation": {"accuracy": 0.934, "macro_f1": 0.933},
            "test": cnn,
            "train_seconds": 410.0,
            "n_parameters": 241546,
            "predict_rows_per_s": 12000.0,
            "params": {"channels": [32, 64, 128], "batch_size": 128},
            "model_uri": "file:///warehouse/models/fashion/run-1/cnn/model.pt",
            "training": {"train": {"history": _history(6, 0.6, 0.85), "best_epoch": 5}},
        },
        {
            "model": "efficientnet_lite0",
            "family": "EfficientNet-Lite0 pretrained on ImageNet, fine-tuned at 64 px",
            "validation": {"accuracy": 0.929, "macro_f1": 0.928},
            "test": effnet,
            "train_seconds": 980.0,
            "n_parameters": 3384010,
            "predict_rows_per_s": 900.0,
            "params": {"resolution": 64},
            "model_uri": "file:///warehouse/models/fashion/run-1/efficientnet_lite0/model.pt",
            "training": {
                "head": {"history": _history(2, 0.9, 0.80), "best_epoch": 2},
                "last_blocks": {"history": _history(2, 0.4, 0.90), "best_epoch": 2},
            },
        },
    ]

    def pair(a, b, ma, mb, p, p_adj, b01, b10, mc_p):
        diff = ma["macro_f1"] - mb["macro_f1"]
        significant = p_adj < 0.05
        return {
            "a": a,
            "b": b,
            "metric": "macro_f1",
            "metric_a": ma["macro_f1"],
            "metric_b": mb["macro_f1"],
            "difference": diff,
            "ci_low": diff - 0.007,
            "ci_high": diff + 0.007,
            "p_value": p,
            "p_adjusted": p_adj,
            "significant": significant,
            "better": ("a" if diff > 0 else "b") if significant else None,
            "n_resamples": 1000,
            "n_defined": 1000,
            "mcnemar": {
                "a_right_b_wrong": b01,
                "a_wrong_b_right": b10,
                "p_value": mc_p,
                "significant": mc_p < 0.05,
                "better": ("a" if b01 > b10 else "b") if mc_p < 0.05 else None,
            },
        }

    comparisons = [
        pair("logreg", "cnn", logreg, cnn, 0.0, 0.0, 210, 1100, 1e-30),
        pair("logreg", "efficientnet_lite0", logreg, effnet, 0.0, 0.0, 190, 1120, 1e-32),
        pair("cnn", "efficientnet_lite0", cnn, effnet, 0.31, 0.31, 240, 280, 0.087),
    ]
    examples = []
    for i, (true, predicted, conf) in enumerate([(6, 0, 0.991), (4, 2, 0.977)]):
        pixels = (np.arange(28 * 28).reshape(28, 28) * (i + 3)) % 256
        examples.append(
            {
                "row": 10 + i,
                "key": f"test-{10 + i:05d}",
                "true": true,
                "predicted": predicted,
                "confidence": conf,
                "image": png_data_uri(pixels.astype(np.uint8)),
            }
        )
    return {
        "format": "moulin.classification-results/1",
        "use_case": "fashion",
        "run_id": "20240502T101500Z-abc123",
        "created_at": "2024-05-02T10:15:00+00:00",
        "code_version": "3f2c1d0",
        "snapshot": {
            "table_uri": "file:///warehouse/silver/fashion_images",
            "version": 4,
            "rows_in_log": {"train": 54000, "validation": 6000, "test": 10000},
        },
        "sample": None,
        "split_rows": {"train": 54000, "validation": 6000, "test": 10000},
        "class_names": names,
        "duplicates": {"train_and_test": 3, "train_and_validation": 8},
        "selection": {"split": "validation", "metric": "accuracy", "recommended": "cnn"},
        "models": models,
        "comparisons": comparisons,
        "bootstrap": {"resamples": 1000, "grouped": False, "seed": 7},
        "worst_test_examples": {"model": "cnn", "examples": examples},
        "published": copy.deepcopy(PUBLISHED),
        "total_seconds": 1500.0,
    }


QUALITY = {
    "rows_manifest": 70000,
    "rows_read": 70000,
    "rows_bronze": 69998,
    "rows_quarantined": 2,
    "quarantine_reasons": {"label_out_of_range": 2},
}


def _section(html: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}"[^>]*>(.*?)</section>', html, re.S)
    assert match, f"section {anchor} missing"
    return match.group(1)


def _text(fragment: str) -> str:
    """The visible text of an HTML fragment (tags dropped, whitespace collapsed)."""
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)))


@pytest.fixture(scope="module")
def results() -> dict:
    return make_results()


@pytest.fixture(scope="module")
def html(results) -> str:
    return render_classification_report(results, WORDING, QUALITY)


def test_page_is_complete_and_self_contained(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>")
    assert html.rstrip().endswith("</html>")
    assert "http://" not in html and "https://" not in html
    for src in re.findall(r'src="([^"]*)"', html):
        assert src.startswith("data:image/"), src
    assert "<link" not in html and "<script" not in html
    for anchor in ("summary", "question", "approach", "hardware", "data", "models", "significance", "errors",
                   "worst", "training", "published", "limits"):  # fmt: skip
        _section(html, anchor)
        assert f'href="#{anchor}"' in html
    assert '<section id="appendix" class="appendix">' in html


def test_recommended_is_the_validation_winner_not_the_test_winner(results: dict, html: str) -> None:
    by_name = {m["model"]: m for m in results["models"]}
    assert by_name["efficientnet_lite0"]["test"]["accuracy"] > by_name["cnn"]["test"]["accuracy"]
    assert by_name["cnn"]["validation"]["accuracy"] > by_name["efficientnet_lite0"]["validation"]["accuracy"]
    summary = _text(_section(html, "summary"))
    assert "Recommended model: cnn (CNN from scratch" in summary
    assert "chosen on the validation split" in summary
    assert "the test images played no part in it" in summary
    assert "efficientnet_lite0 (0.935) scored higher on the test images" in summary
    assert "never on test" in summary
    assert "Recommended model: efficientnet_lite0" not in summary
    # Test accuracy with its 95% interval.
    assert "On the 10,000 test images it puts 93.1% of the photos in the right class" in summary
    assert "(accuracy 0.931, 95% interval 0.926–0.936)" in summary
    # The recommended row of the comparison table is the highlighted first one.
    table = _section(html, "models")
    first_row = re.search(r"<tbody><tr([^>]*)>(.*?)</tr>", table, re.S)
    assert first_row and 'class="best"' in first_row.group(1)
    assert '>cnn <span class="badge ok">recommended</span>' in first_row.group(2)


def test_significance_wording_for_both_kinds_of_pair(html: str) -> None:
    summary = _text(_section(html, "summary"))
    assert (
        "cnn against logreg: cnn is better, and the difference is statistically significant after Holm "
        "adjustment (macro-F1" in summary
    )
    assert (
        "cnn against efficientnet_lite0: the difference is not statistically significant after Holm "
        "adjustment" in summary
    )
    assert "the two cannot be told apart" in summary
    # A bootstrap p of 0 is shown below its resolution (2 x 3 pairs / 1000 resamples), not as 0.
    assert "adjusted p < 0.006" in summary
    assert "adjusted p 0.31" in summary
    table = _text(_section(html, "significance"))
    assert "logreg vs cnn" in table
    assert "Real difference: cnn is better (significant after Holm adjustment)." in table
    assert "No real difference shown: not significant after Holm adjustment." in table
    assert "On accuracy, neither is right clearly more often where they disagree." in table
    # McNemar discordant counts.
    assert "210" in table and "1,100" in table and "240" in table and "280" in table


def test_confusion_matrix_has_100_cells_with_highlighted_diagonal(results: dict, html: str) -> None:
    errors = _section(html, "errors")
    cells = re.findall(r'<td class="num cm( diag)?"[^>]*>([^<]*)</td>', errors)
    assert len(cells) == 100
    assert sum(1 for diag, _ in cells if diag) == 10
    confusion = next(m for m in results["models"] if m["model"] == "cnn")["test"]["confusion"]
    assert [v for _, v in cells] == [f"{v:,}" for row in confusion for v in row]
    # Per-class table: every class with its F1.
    for pc in next(m for m in results["models"] if m["model"] == "cnn")["test"]["per_class"]:
        assert f"{pc['f1']:.3f}" in errors


def test_worst_images_inline(results: dict, html: str) -> None:
    worst = _section(html, "worst")
    images = re.findall(r'<img src="([^"]+)" width="56" height="56" style="image-rendering:pixelated"', worst)
    assert images == [e["image"] for e in results["worst_test_examples"]["examples"]]
    assert all(src.startswith("data:image/png;base64,") for src in images)
    text = _text(worst)
    assert "true: Shirt predicted: T-shirt/top 99% sure" in text
    assert "true: Coat predicted: Pullover 98% sure" in text


def test_training_curves_and_data_wait(html: str) -> None:
    training = _section(html, "training")
    charts = re.findall(
        r'<figure><img src="(data:image/png;base64,[^"]+)" alt="Training curves of ([^"]+):', training
    )
    assert [model for _, model in charts] == ["cnn", "efficientnet_lite0"]
    assert len({uri for uri, _ in charts}) == 2  # one chart per network, each its own
    assert "<svg" not in html  # one chart technique: matplotlib PNGs
    # the phase marker of the two-phase network
    assert "dashed lines: phase last_blocks starts" in _text(training)
    assert "Waiting for data took 10.0% of the epoch time" in _text(training)


def test_published_rows_beside_moulin(html: str) -> None:
    published = _section(html, "published")
    for row in PUBLISHED:
        assert row["classifier"] in published
    assert published.count("published, not verified by the dataset") == len(PUBLISHED)
    assert published.count("moulin, this run") == 3
    accuracies = [float(a) for a in re.findall(r'<td class="num">(0\.\d{3})', published)]
    assert accuracies == sorted(accuracies, reverse=True) and len(accuracies) == len(PUBLISHED) + 3
    summary = _text(_section(html, "summary"))
    assert "is above HOG+SVM 0.926, below ResNet18 0.949" in summary
    assert "4 of the 6 published results are lower" in summary


def test_data_and_quality_sections(html: str) -> None:
    data = _text(_section(html, "data"))
    assert "54,000" in data and "6,000" in data and "10,000" in data
    assert "file:///warehouse/silver/fashion_images" in data and "version 4" in data
    assert "3 test images also appear in training or validation" in data
    assert "label_out_of_range" in data
    assert "Every image read is accounted for" in data
    sampled = make_results()
    sampled["sample"] = 0.1
    without = render_classification_report(sampled, WORDING)
    assert "were not supplied" in _text(_section(without, "data"))
    assert "Sample: 10% of the images" in _text(_section(without, "data"))
    assert "Only a sample of 10% of the images was used" in _text(_section(without, "summary"))


def test_quality_accounting_failure_is_flagged() -> None:
    bad = {**QUALITY, "rows_bronze": 69990}
    html = render_classification_report(make_results(), WORDING, bad)
    assert "row accounting does not add up" in _text(_section(html, "summary"))
    assert '<div class="alert">' in _section(html, "data")


def test_text_from_data_is_escaped() -> None:
    names = list(CLASSES)
    names[6] = "<script>alert('x')</script>"
    results = make_results(names)
    results["models"][1]["family"] = 'CNN "quoted" & <b>bold</b>'
    results["published"].append(
        {"classifier": "<img src=x onerror=alert(1)>", "preprocessing": "", "accuracy": 0.5}
    )
    html = render_classification_report(results, WORDING)
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<img src=x" not in html


@pytest.mark.parametrize("key", ["models", "selection", "class_names"])
def test_missing_keys_raise(key: str) -> None:
    results = make_results()
    del results[key]
    with pytest.raises(ValueError, match=key):
        render_classification_report(results, WORDING)


def test_unknown_recommended_model_raises() -> None:
    results = make_results()
    results["selection"]["recommended"] = "nope"
    with pytest.raises(ValueError, match="nope"):
        render_classification_report(results, WORDING)


def test_sparse_results_still_render() -> None:
    """Only the required keys (and NaNs turned to None by json_safe): every gap says so."""
    results = make_results()
    minimal = {k: results[k] for k in ("models", "selection", "class_names")}
    minimal["models"] = [copy.deepcopy(results["models"][1])]
    minimal["models"][0]["test"]["intervals"] = {"accuracy": [None, None], "macro_f1": [None, None]}
    minimal["models"][0]["test"]["ece"] = None
    minimal["models"][0].pop("training")
    html = render_classification_report(minimal, WORDING)
    assert "Recommended model: cnn" in _text(_section(html, "summary"))
    assert "No published results were supplied" in html
    assert "Misclassified test images: not available." in html
    assert "http://" not in html and "https://" not in html


def test_write_report(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    uri = settings.table_uri("reports", "fashion", "run-1.html")
    assert write_classification_report(make_results(), uri, settings, WORDING, QUALITY) == uri
    path = Path(urlparse(uri).path)
    assert path.read_text(encoding="utf-8") == render_classification_report(make_results(), WORDING, QUALITY)


def test_question_approach_hardware_and_limits_come_from_the_framing(html: str) -> None:
    assert f"<h1>{FRAMING.question}</h1>" in html and WORDING.title == FRAMING.question
    question = _text(_section(html, "question"))
    assert FRAMING.decision.acted_on_by in question and FRAMING.scope.ai_can_help[0] in question
    approach = _text(_section(html, "approach"))
    assert "multi-class classification into 10 classes (T-shirt/top, Trouser" in approach
    assert "worth using from 0.90 accuracy or more" in approach
    assert "file every photo under the most common class; it scores 0.100" in approach  # 1,000 of each class
    assert "No column of the data holds personal data." in approach
    assert FRAMING.hardware.serving in _text(_section(html, "hardware"))
    limits = _text(_section(html, "limits"))
    assert FRAMING.limits[0] in limits
    assert "3 test images also appear in training or validation" in limits  # measured on this run


def test_the_summary_sets_the_result_against_the_threshold(html: str) -> None:
    summary = _text(_section(html, "summary"))
    assert (
        "Against the goal: the recommended model reaches 0.931 accuracy where 0.90 was needed; the naive "
        "baseline (file every photo under the most common class) scores 0.100."
    ) in summary
    stricter = dataclasses.replace(FRAMING, metric=dataclasses.replace(FRAMING.metric, threshold=0.95))
    page = render_classification_report(make_results(), dataclasses.replace(WORDING, framing=stricter))
    summary = _text(_section(page, "summary"))
    assert (
        "Against the goal: the recommended model falls short: 0.931 accuracy where 0.95 was needed" in summary
    )
    assert "holds the threshold" not in summary  # the interval 0.926–0.936 lies below 0.95
