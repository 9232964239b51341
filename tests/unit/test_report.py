"""The decision-maker report (moulin.reporting): rendering, escaping, gaps, writing."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest

from moulin.reporting import ReportInputError, ReportInputs
from moulin.training.compared_models import ResultsError
from moulin.usecases.flights.report import FRAMING, build_report, render_report, report_uri

CARRIERS = {  # carrier: test flights (roughly the Nov-Dec 2013 mix)
    "UA": 9800,
    "B6": 9300,
    "EV": 8600,
    "DL": 8000,
    "AA": 5400,
    "MQ": 4200,
    "US": 3300,
    "9E": 2800,
    "WN": 2000,
    "VX": 860,
    "FL": 520,
    "AS": 120,
    "F9": 110,
    "YV": 90,
    "HA": 60,
    "OO": 5,
}
ORIGINS = {"EWR": 19900, "JFK": 18700, "LGA": 16600}


def _curves(auc_shift: float, seed: int) -> dict:
    """ROC/PR/calibration curves of a synthetic scorer (about 20% positives)."""
    rng = np.random.default_rng(seed)
    y = rng.random(4000) < 0.2
    score = 1 / (1 + np.exp(-(rng.normal(size=4000) + auc_shift * y - 1.6)))
    order = np.argsort(-score)
    ys = y[order]
    tp, fp = np.cumsum(ys), np.cumsum(~ys)
    tpr, fpr = tp / ys.sum(), fp / (~ys).sum()
    precision = tp / np.arange(1, len(ys) + 1)
    idx = np.linspace(0, len(ys) - 1, 120).astype(int)
    bins = np.linspace(0, 1, 11)
    which = np.digitize(score, bins[1:-1])
    cal = {"bin_mid": [], "observed": [], "predicted": [], "count": []}
    for b in range(10):
        mask = which == b
        if mask.sum() >= 20:
            cal["bin_mid"].append(float((bins[b] + bins[b + 1]) / 2))
            cal["observed"].append(float(y[mask].mean()))
            cal["predicted"].append(float(score[mask].mean()))
            cal["count"].append(int(mask.sum()))
    return {
        "roc": {"fpr": [0.0, *fpr[idx].round(4).tolist()], "tpr": [0.0, *tpr[idx].round(4).tolist()]},
        "pr": {"recall": tpr[idx].round(4).tolist(), "precision": precision[idx].round(4).tolist()},
        "calibration": cal,
    }


def _slices(base: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)

    def one(values: dict[str, int]) -> list[dict]:
        return [
            {
                "value": v,
                "n": n,
                "roc_auc": round(float(np.clip(base + rng.normal(0, 0.03 + 0.4 / np.sqrt(n)), 0.3, 0.99)), 4),
                "positive_rate": round(float(rng.uniform(0.12, 0.3)), 4),
            }
            for v, n in values.items()
        ]

    return {"carrier": one(CARRIERS), "origin": one(ORIGINS)}


def _model(name: str, family: str, auc: float, shift: float, seed: int, **extra) -> dict:
    def m(v: float, w: float) -> dict:
        return {"value": v, "ci_low": round(v - w, 4), "ci_high": round(v + w, 4)}

    return {
        "model": name,
        "family": family,
        "metrics": {
            "roc_auc": m(auc, 0.006),
            "pr_auc": m(round(auc - 0.32, 4), 0.01),
            "f1": m(round(auc - 0.28, 4), 0.008),
            "brier": m(0.141, 0.002),
            "ece": m(0.012 + seed / 1000, 0.003),
        },
        "threshold": 0.2871 + seed / 100,
        "curves": _curves(shift, seed),
        "slices": _slices(auc, seed),
        "train_seconds": 12.4 * seed + 3,
        "params": {"max_depth": 6, "learning_rate": 0.1} if family == "tree" else {"C": 1.0},
        **extra,
    }


def _profile() -> pd.DataFrame:
    rows = []

    def add(col: str, metric: str, value=None, detail=None, table="gold/flight_features"):
        rows.append(
            {
                "table": table,
                "column": col,
                "metric": metric,
                "value": value,
                "detail": None if detail is None else json.dumps(detail),
            }
        )

    rng = np.random.default_rng(7)
    numeric = {
        "sched_dep_hour": (5, 23, 13.2, 4.7, 0),
        "distance": (17, 4983, 1040.0, 733.2, 0),
        "temp": (10.9, 100.0, 56.9, 17.9, 1530),
        "wind_speed": (0, 42.6, 10.5, 5.4, 1620),
        "plane_age": (0, 57, 15.8, 9.5, 52000),
        "route_delay_rate": (0.0, 0.61, 0.21, 0.07, 120),
    }
    for col, (lo, hi, mean, std, missing) in numeric.items():
        add(col, "count", 327346 - missing)
        add(col, "missing", missing)
        add(col, "distinct", 19 if col == "sched_dep_hour" else 2000)
        for metric, value in (
            ("min", lo),
            ("max", hi),
            ("mean", mean),
            ("std", std),
            ("p25", mean - std * 0.67),
            ("p50", mean),
            ("p75", mean + std * 0.67),
        ):
            add(col, metric, value)
        edges = np.linspace(lo, hi, 21)
        counts = np.histogram(np.clip(rng.normal(mean, std, 20000), lo, hi), bins=edges)[0]
        add(col, "histogram", detail={"edges": edges.round(3).tolist(), "counts": counts.tolist()})
    add("temp", "corr", 0.06, {"with": "dep_delayed_15"})
    add("route_delay_rate", "corr", 0.19, {"with": "dep_delayed_15"})
    add("route_delay_rate", "corr", -0.02, {"with": "distance"})
    for col, values in (("carrier", ["UA", "B6", "EV"]), ("origin", ["EWR", "JFK", "LGA"])):
        add(col, "count", 327346)
        add(col, "missing", 0)
        add(col, "distinct", 16 if col == "carrier" else 3)
        add(col, "top_values", detail={"values": values, "counts": [57979, 54049, 51108]})
    add("dep_delay", "count", 328521, table="silver/flights")
    add("dep_delay", "missing", 8255, table="silver/flights")
    add("dep_delay", "min", -43, table="silver/flights")
    add("dep_delay", "max", 1301, table="silver/flights")
    return pd.DataFrame(rows)


def make_raw() -> dict:
    """Realistic report inputs as the pipeline would hand them over (plain data)."""
    models = {
        "run_id": "train-20240502-1",
        "features_uri": "hdfs://namenode:8020/moulin/gold/flight_features",
        "features_version": 7,
        "split_rows": {"train": 225138, "validation": 56872, "test": 55346},
        "base_rate": 0.2034,
        "models": [
            _model("logistic_regression", "linear", 0.6921, 1.0, 1),
            _model("gradient_boosted_trees", "tree", 0.7384, 1.35, 2),
            _model("mlp", "neural", 0.7312, 1.3, 3),
        ],
    }
    quality = [
        {
            "source": "flights",
            "stage": "bronze",
            "rows_read": 336776,
            "rows_out": 336776,
            "rows_rejected": 0,
            "quarantine_by_reason": {},
            "threshold": 0.01,
            "failed_share": 0.0,
            "passed": True,
        },
        {
            "source": "flights",
            "stage": "silver",
            "rows_read": 336776,
            "rows_out": 327346,
            "rows_rejected": 9430,
            "quarantine_by_reason": {"cancelled (no dep_time)": 8255, "missing tailnum": 1175},
            "threshold": 0.05,
            "failed_share": 0.028,
            "passed": True,
        },
        {
            "source": "weather",
            "stage": "bronze",
            "rows_read": 26115,
            "rows_out": 26112,
            "rows_rejected": 3,
            "quarantine_by_reason": {"duplicate hour": 3},
            "threshold": 0.01,
            "failed_share": 0.000115,
            "passed": True,
        },
        {
            "source": "planes",
            "stage": "bronze",
            "rows_read": 3322,
            "rows_out": 3322,
            "rows_rejected": 0,
            "quarantine_by_reason": {},
            "threshold": 0.01,
            "failed_share": 0.0,
            "passed": True,
        },
    ]
    return {
        "run": {
            "run_id": "scheduled__2024-05-02T00:00:00+00:00",
            "logical_date": "2024-05-02",
            "profile": "hdfs-local",
            "warehouse": "hdfs://namenode:8020/moulin",
            "generated_at": "2024-05-02T03:12:09+00:00",
            "code_version": "16fb62b",
        },
        "quality": quality,
        "profile": _profile(),
        "models": models,
        "stage_timings": [
            {"stage": "ingest", "seconds": 41.2, "rows": 366235},
            {"stage": "quality", "seconds": 18.7, "rows": 366235},
            {"stage": "features", "seconds": 95.0, "rows": 327346},
            {"stage": "train", "seconds": 412.3, "rows": 282010},
            {"stage": "report", "seconds": 2.1, "rows": None},
        ],
    }


def make_inputs(raw: dict | None = None, **kwargs) -> ReportInputs:
    raw = make_raw() if raw is None else raw
    return ReportInputs.from_dicts(**raw, **kwargs)


@pytest.fixture(scope="module")
def sample_html() -> str:
    return render_report(make_inputs())


def _visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# -- structure and numbers
def test_sections_exist(sample_html: str) -> None:
    anchors = (
        "summary",
        "question",
        "approach",
        "hardware",
        "quality",
        "profile",
        "models",
        "slices",
        "limits",
    )
    for anchor in (*anchors, "appendix"):
        assert f'id="{anchor}"' in sample_html and f'href="#{anchor}"' in sample_html
    for heading in (
        "In short",
        "The question",
        "The approach",
        "Hardware needed",
        "The data and its quality",
        "Data profile",
        "Model comparison",
        "What the best model is good and bad at",
        "Limits",
        "Technical appendix",
    ):
        assert f">{heading}</h2>" in sample_html
    assert sample_html.startswith("<!DOCTYPE html>")
    assert sample_html.rstrip().endswith("</html>")


def test_numbers_appear(sample_html: str) -> None:
    text = _visible_text(sample_html)
    # quality counts and the accounting check
    assert "336,776" in text and "327,346" in text and "9,430" in text
    assert "cancelled (no dep_time)" in text and "8,255" in text
    assert "336,776 = 327,346 + 9,430" in text
    # leaderboard with CIs, best model first; threshold and F1
    assert "0.738 (0.732–0.744)" in text
    assert text.index("gradient_boosted_trees") < text.index("logistic_regression")
    assert "F1" in text and "0.46" in text  # F1 of the best model, 2 digits in the summary
    assert "0.31" in text  # its threshold
    # base rate, split sizes, provenance
    assert "20.3%" in text and "55,346" in text
    assert "hdfs://namenode:8020/moulin/gold/flight_features" in text
    assert "Feature table Delta version 7" in text
    assert "16fb62b" in text and "2024-05-02T03:12:09+00:00" in text
    # profile: missing share of plane_age, correlation
    assert "plane_age" in text and "15.9%" in text
    assert "dep_delayed_15 (+0.19)" in text
    # stage timings
    assert "6 min 52 s" in text


def test_best_model_summary_and_slices(sample_html: str) -> None:
    text = _visible_text(sample_html)
    assert "The best model is gradient_boosted_trees (tree)" in text
    assert "runner-up, mlp" in text
    # small slices are flagged (OO has 5 test flights, HA 60) and left out of best/worst
    assert "OO (small)" in text
    assert re.search(r"\d+ airline \(carrier\) group\(s\) have fewer than 500 test flights", text)
    assert "Only 3 origin airports (EWR, JFK, LGA)" in text


def _section(html: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}"[^>]*>(.*?)</section>', html, re.S)
    assert match, f"section {anchor} missing"
    return _visible_text(match.group(1))


def test_question_approach_hardware_and_limits_come_from_the_framing(sample_html: str) -> None:
    assert f"<h1>{FRAMING.question}</h1>" in sample_html
    question = _section(sample_html, "question")
    assert FRAMING.question in question and FRAMING.decision.acted_on_by in question
    assert FRAMING.scope.ai_cannot_help[0] in question
    assert "Flights are split by date" in question and "55,346 test flights" in question
    approach = _section(sample_html, "approach")
    assert "binary classification into 2 classes (on-time, late)" in approach
    assert "route_delay_rate" in approach and "Left out on purpose: dep_delay" in approach
    assert "worth using from 0.65 ROC AUC or more" in approach and "it scores 0.500" in approach
    assert "raw/&lt;source&gt;/ds=&lt;month&gt;/ on HDFS" in approach  # the storage steps, escaped
    hardware = _section(sample_html, "hardware")
    assert "2 CPU cores train the MLP" in hardware and "Accelerator (GPU)" in hardware
    limits = _section(sample_html, "limits")
    assert limits.index("One year of data (2013)") < limits.index(
        "Only 3 origin airports"
    )  # stated, then measured


def test_the_summary_sets_the_result_against_the_threshold(sample_html: str) -> None:
    summary = _section(sample_html, "summary")
    assert (
        "Against the goal: the best model reaches 0.738 ROC AUC where 0.65 was needed; the naive baseline "
        "(give every flight the same risk, the share of late flights in the training months) scores 0.500."
    ) in summary
    stricter = dataclasses.replace(FRAMING, metric=dataclasses.replace(FRAMING.metric, threshold=0.74))
    page = render_report(make_inputs(), framing=stricter)
    summary = _section(page, "summary")
    assert "Against the goal: the best model falls short: 0.738 ROC AUC where 0.74 was needed" in summary
    assert "its 95% interval, 0.732–0.744, holds the threshold" in summary
    assert "worth using from 0.74 ROC AUC" in _section(page, "approach")


def test_plots_are_inline_and_no_external_resources(sample_html: str) -> None:
    imgs = re.findall(r'<img src="([^"]+)"', sample_html)
    # histograms, ROC+PR, calibration, 2 slice plots
    assert len(imgs) == 5
    assert all(src.startswith("data:image/png;base64,") for src in imgs)
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', sample_html)
    assert "http://" not in sample_html and "https://" not in sample_html
    assert "<script" not in sample_html and "<link" not in sample_html and "@import" not in sample_html


# -- escaping and gaps
def test_data_strings_are_escaped() -> None:
    raw = make_raw()
    evil = "<script>alert(1)</script>"
    raw["models"]["models"][1]["slices"]["carrier"][0]["value"] = evil
    raw["models"]["models"][1]["model"] = 'gbt"><img src=x onerror=alert(2)>'
    raw["quality"][1]["quarantine_by_reason"] = {"<b>bad</b> & worse": 9430}
    raw["run"]["code_version"] = "</code><script>x</script>"
    html = render_report(make_inputs(raw))
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "gbt&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;b&gt;bad&lt;/b&gt; &amp; worse" in html


def test_missing_optional_parts_say_not_available() -> None:
    raw = make_raw()
    for m in raw["models"]["models"]:
        del m["curves"], m["slices"], m["threshold"], m["train_seconds"], m["params"]
        del m["metrics"]["ece"]
    raw["profile"] = None
    raw["stage_timings"] = []
    del raw["run"]["code_version"]
    raw["models"]["features_version"] = None
    html = render_report(make_inputs(raw))
    text = _visible_text(html)
    assert "ROC and precision-recall curves: not available" in text
    assert "Calibration plot: not available" in text
    assert "Slice metrics by airline (carrier): not available" in text
    assert "Profile: not available" in text
    assert "Stage timings: not available" in text
    assert "Code version not available" in text
    assert "Feature table Delta version not available" in text
    assert "<img" not in html  # nothing to draw


def test_profile_tolerates_missing_metrics() -> None:
    raw = make_raw()
    prof = raw["profile"]
    raw["profile"] = prof[prof["metric"].isin(["count", "max"])].drop(columns=["detail"])
    text = _visible_text(render_report(make_inputs(raw)))
    assert "Histograms: not available" in text
    assert "4,983" in text  # max distance


def test_minimal_inputs_render() -> None:
    inputs = ReportInputs.from_dicts(models={"run_id": "r1", "models": []})
    text = _visible_text(render_report(inputs))
    assert "Model results: not available" in text
    assert "Quality results: not available" in text
    assert "Run r1" in text


def test_accounting_failure_is_flagged() -> None:
    raw = make_raw()
    raw["quality"][2]["rows_out"] = 26100  # 26,115 read, 26,100 kept + 3 quarantined: 12 rows lost
    raw["quality"][1]["passed"] = False
    html = render_report(make_inputs(raw))
    text = _visible_text(html)
    assert "26,115 ≠ 26,100 + 3" in text
    assert 'class="badge fail"' in html and "FAILED" in text
    assert "row accounting FAILED for weather/bronze" in text
    assert "quality gate FAILED for flights/silver" in text
    assert 'class="alert"' in html
    # the OK case shows no failure
    ok_html = render_report(make_inputs())
    assert "FAILED" not in _visible_text(ok_html) and 'class="badge fail"' not in ok_html


def test_rank_by_and_best_model_override() -> None:
    raw = make_raw()
    raw["models"]["best_model"] = "mlp"
    text = _visible_text(render_report(make_inputs(raw)))
    assert "The best model is mlp (neural)" in text
    by_ece = make_inputs(rank_by="ece").ranked()  # lower is better
    assert [m.model for m in by_ece] == ["logistic_regression", "gradient_boosted_trees", "mlp"]
    assert [m.model for m in make_inputs(raw, rank_by="ece").ranked()][0] == "mlp"  # the recommended first
    with pytest.raises(ReportInputError, match="rank_by: unknown metric 'auc'"):
        make_inputs(rank_by="auc")


def test_validation_choice_and_paired_tests_are_reported() -> None:
    raw = make_raw()
    names = [m["model"] for m in raw["models"]["models"]]
    chosen, other = names[-1], names[0]  # the validation winner need not lead on test
    raw["models"]["best_model"] = chosen
    raw["models"]["selection"] = {"split": "validation", "metric": "roc_auc", "recommended": chosen}
    raw["models"]["comparisons"] = [
        {"a": name, "b": chosen, "metric": "roc_auc", "difference": 0.004, "ci_low": -0.002, "ci_high": 0.01,
         "p_value": 0.2, "p_adjusted": 0.4, "significant": False, "better": None, "grouped": True}
        for name in names[:-1]
    ]  # fmt: skip
    text = _visible_text(render_report(make_inputs(raw)))
    assert f"The recommended model is {chosen}" in text and "chosen on the validation period" in text
    assert "Are the differences real?" in text and "no significant difference" in text
    assert "resamples whole days" in text and "the difference is not significant" in text
    for pair in raw["models"]["comparisons"]:
        pair.update(significant=True, better="a", p_adjusted=0.01, ci_low=0.001)
    text = _visible_text(render_report(make_inputs(raw)))
    assert f"{other} is better" in text and "is significantly better" in text


def test_malformed_inputs_raise() -> None:
    raw = make_raw()
    raw["quality"][0]["rows_read"] = "lots"
    with pytest.raises(ReportInputError, match=r"quality\[0\]\.rows_read"):
        make_inputs(raw)
    raw = make_raw()
    raw["models"]["models"][0]["curves"]["roc"]["tpr"] = [0.0, 1.0]
    with pytest.raises(ResultsError, match=r"models\[0\]\.curves\.roc: lists of different lengths"):
        make_inputs(raw)
    with pytest.raises(ReportInputError, match="run_id"):
        ReportInputs.from_dicts(models={"models": []})
    raw = make_raw()
    raw["models"]["models"].append(copy.deepcopy(raw["models"]["models"][0]))
    with pytest.raises(ResultsError, match="duplicate"):
        make_inputs(raw)


# -- writing
def test_build_report_writes_to_warehouse(settings) -> None:
    inputs = make_inputs()
    uri = build_report(settings, inputs)
    assert uri == settings.table_uri("reports", "flights", "scheduled__2024-05-02T00_00_00_00_00.html")
    assert uri == report_uri(settings, inputs.run.run_id)
    path = Path(urlparse(uri).path)
    html = path.read_text(encoding="utf-8")
    assert "gradient_boosted_trees" in html and uri in html
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_build_report_fills_generated_at(settings) -> None:
    raw = make_raw()
    raw["run"] = {"run_id": "manual-1"}
    uri = build_report(settings, make_inputs(raw))
    assert uri.endswith("/reports/flights/manual-1.html")
    text = _visible_text(Path(urlparse(uri).path).read_text(encoding="utf-8"))
    assert re.search(r"Generated at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", text)


def test_report_uri_is_safe(settings) -> None:
    assert report_uri(settings, "../../etc/passwd").endswith("/reports/flights/_.._etc_passwd.html")


def test_profile_table_layout_is_mapped_onto_report_metrics() -> None:
    """The stored quality/table_profiles layout (moulin.profiling) feeds the report."""
    import json as _json

    import pandas as _pd

    from moulin.reporting.inputs import normalize_profile

    stored = _pd.DataFrame(
        [
            ("flight_features", "*", "rows", "", 10.0, None),
            ("flight_features", "distance", "quantile", "0.5", 1040.0, None),
            ("flight_features", "distance", "distinct_approx", "", 2000.0, None),
            ("flight_features", "distance", "corr", "dep_delayed_15", -0.2, None),
            ("flight_features", "carrier", "top_values", "", 2.0,
             _json.dumps([{"value": "UA", "count": 6}, {"value": "B6", "count": 4}])),
        ],
        columns=["table", "column", "metric", "detail_key", "value", "detail"],
    )  # fmt: skip
    out = normalize_profile(stored)
    assert "*" not in set(out["column"])
    assert set(out["metric"]) == {"p50", "distinct", "corr", "top_values"}
    assert _json.loads(out.loc[out.metric == "corr", "detail"].iloc[0]) == {"with": "dep_delayed_15"}
    top = _json.loads(out.loc[out.metric == "top_values", "detail"].iloc[0])
    assert top == {"values": ["UA", "B6"], "counts": [6, 4]}
