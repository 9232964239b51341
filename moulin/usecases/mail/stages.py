"""The stages of the mail use case: bronze -> silver (labelled, split), and the spam
filter trained on the pseudonymised silver table."""

from __future__ import annotations

import json
from typing import Any

from moulin.contracts import load_contract
from moulin.errors import DataError
from moulin.settings import Settings
from moulin.usecases.mail.params import PARAMS, PIPELINE

LABELS = {"spam.mbox": "spam", "ham.mbox": "ham"}


class MailboxNameError(DataError):
    """A landed mailbox file is named neither spam.mbox nor ham.mbox: its label is unknown."""


def to_silver(bronze, seed: int = PARAMS.split_seed):
    """Bronze messages -> silver rows: the label from the mailbox file, the number of
    recipients, a split seeded by content (subject and masked body); display names
    and relay IPs dropped."""
    from pyspark.sql import functions as F

    box = F.regexp_extract(F.col("_source_file"), r"([^/]+)$", 1)
    label = F.coalesce(*[F.when(box.endswith(name), F.lit(value)) for name, value in LABELS.items()])
    # by content, not by pseudonym: the split survives a key rotation, and copies of one
    # message (same subject and body) fall in the same split
    bucket = F.pmod(F.xxhash64("subject", "body", F.lit(seed)), F.lit(1000)) / 1000.0
    split = (
        F.when(bucket < PARAMS.train_share, "train")
        .when(bucket < PARAMS.train_share + PARAMS.validation_share, "validation")
        .otherwise("test")
    )
    recipients = F.when(F.col("to_addresses").isNull(), F.lit(0)).otherwise(
        F.size(F.split("to_addresses", ", "))
    )
    return bronze.select(
        "message_id",
        "sent_at",
        "from_address",
        "to_addresses",
        recipients.cast("int").alias("n_recipients"),
        "subject",
        "body",
        label.alias("label"),
        split.alias("split"),
        "ds",
    )


def _check_mailbox_names(bronze, bronze_uri: str) -> None:
    unknown = [
        r["_source_file"]
        for r in bronze.select("_source_file").distinct().collect()
        if r["_source_file"].rsplit("/", 1)[-1] not in LABELS
    ]
    if unknown:
        raise MailboxNameError(
            f"mailbox file(s) {unknown[:3]} in {bronze_uri} are named neither spam.mbox nor ham.mbox: "
            "the label comes from the mailbox name; land them under one of those names"
        )


def silver_mail(spark, settings: Settings) -> dict[str, Any]:
    """Rebuild ``silver/mail_messages`` from every bronze partition (one checked,
    idempotent commit keyed on the bronze version)."""
    from moulin.quality.rebuild import Rebuild, rebuild

    spec = Rebuild(
        source="bronze_mail",
        target="silver_mail",
        transform=to_silver,
        rows_called="messages",
        count_by=("label", "split"),
        pipeline=PIPELINE,
        parameters=(PARAMS.split_seed,),
        check=_check_mailbox_names,
    )
    return rebuild(spark, settings, spec)


def _text(frame) -> Any:
    return (frame["subject"].fillna("") + " \n " + frame["body"].fillna("")).tolist()


def _sender_tokens(frame) -> Any:
    return [
        f"sender_{s} nrcpt_{n}"
        for s, n in zip(frame["from_address"].fillna("none"), frame["n_recipients"], strict=True)
    ]


def train_spam_filter(settings: Settings, version: int | None = None) -> dict[str, Any]:
    """Train TF-IDF + logistic regression spam filters on the pseudonymised silver table:
    text only, and text + the sender's pseudonym and recipient count (the block's
    weight and C chosen on validation, as is the recommended filter); test reported
    once.  Writes ``models/mail/spam_filter/metrics.json``; returns the metrics."""
    import numpy as np
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    from moulin.delta import DeltaTableStore
    from moulin.storage import WarehouseFS

    contract = load_contract("silver_mail")
    uri = settings.table_uri(contract.table)
    store = DeltaTableStore()
    version = store.version(uri) if version is None else version
    frame = store.to_pandas(uri, version=version)
    parts = {s: frame[frame["split"] == s] for s in ("train", "validation", "test")}
    empty = [s for s, f in parts.items() if f.empty or f["label"].nunique() < 2]
    if empty:
        raise DataError(f"{uri} v{version}: split(s) {empty} lack rows of both labels: land more messages")
    y = {s: (f["label"] == "spam").to_numpy(int) for s, f in parts.items()}
    words = TfidfVectorizer(max_features=PARAMS.max_features, sublinear_tf=True, min_df=2)
    text = {"train": words.fit_transform(_text(parts["train"]))}
    for s in ("validation", "test"):
        text[s] = words.transform(_text(parts[s]))
    senders = TfidfVectorizer(token_pattern=r"\S+", lowercase=False)
    who = {"train": senders.fit_transform(_sender_tokens(parts["train"]))}
    for s in ("validation", "test"):
        who[s] = senders.transform(_sender_tokens(parts[s]))
    variants = {"text": [(0.0, text)]}
    variants["text+sender_pseudonym"] = [
        (w, {s: hstack([text[s], w * who[s]]).tocsr() for s in text}) for w in PARAMS.sender_weights
    ]
    results: dict[str, Any] = {}
    for variant, candidates in variants.items():
        best = None
        for weight, feats in candidates:
            for c in PARAMS.c_grid:
                model = LogisticRegression(C=c, max_iter=2000).fit(feats["train"], y["train"])
                score = f1_score(y["validation"], model.predict(feats["validation"]))
                if best is None or score > best[0]:
                    best = (score, c, weight, model, feats)
        assert best is not None
        score, c, weight, model, feats = best
        proba = model.predict_proba(feats["test"])[:, 1]
        pred = (proba >= 0.5).astype(int)
        results[variant] = {
            "C": c,
            **({"sender_weight": weight} if variant != "text" else {}),
            "validation_f1": round(float(score), 4),
            "test_accuracy": round(float(accuracy_score(y["test"], pred)), 4),
            "test_f1_spam": round(float(f1_score(y["test"], pred)), 4),
            "test_roc_auc": round(float(roc_auc_score(y["test"], proba)), 4),
        }
    metrics = {
        "table": uri,
        "version": version,
        "rows": {s: int(len(f)) for s, f in parts.items()},
        "spam_share_test": round(float(np.mean(y["test"])), 4),
        "models": results,
        "chosen_on": "validation F1 (spam)",
        "recommended": max(results, key=lambda name: results[name]["validation_f1"]),
    }
    out = settings.table_uri("models", "mail", "spam_filter", "metrics.json")
    WarehouseFS(settings).write_bytes(out, json.dumps(metrics, indent=2).encode() + b"\n")
    metrics["metrics_uri"] = out
    return metrics
