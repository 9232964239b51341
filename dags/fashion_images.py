"""Airflow DAG of the image use case, run when bronze images are updated (DAG ``source_fashion``
lands and gates them): silver (labelled, split, hashed) → logistic regression, a CNN
from scratch and EfficientNet-Lite0 fine-tuned, compared on a pinned snapshot → report.
Params: ``sample``, ``models``, ``epochs_scale`` (see moulin.usecases.classifier_dags)."""

from datetime import datetime

from moulin.usecases.classifier_dags import classifier_dag
from moulin.usecases.fashion.params import PARAMS

dag = classifier_dag(
    "fashion_images", "fashion", "bronze/fashion_images", "silver/fashion_images", datetime(2017, 8, 25),
    PARAMS.models, __doc__, __file__,
)  # fmt: skip
