"""Airflow DAG of the text use case, run when bronze posts are updated (DAG ``source_sentiment``
lands and gates them): silver (label index, post id, stored split) → TF-IDF + logistic
regression, a word CNN from scratch and MiniLM fine-tuned, compared on a pinned
snapshot → report.  Params: ``sample``, ``models``, ``epochs_scale``."""

from datetime import datetime

from moulin.usecases.classifier_dags import classifier_dag
from moulin.usecases.sentiment.params import PARAMS

dag = classifier_dag(
    "sentiment_posts", "sentiment", "bronze/sentiment_posts", "silver/sentiment_posts", datetime(2016, 8, 4),
    PARAMS.models, __doc__, __file__,
)  # fmt: skip
