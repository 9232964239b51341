"""moulin: a data and deep-learning platform for Hadoop clusters.

Airflow DAGs, Spark jobs and training scripts all import this package:
settings (:mod:`moulin.settings`), Spark sessions (:mod:`moulin.spark`), the
local cluster (:mod:`moulin.cluster`), Delta storage (:mod:`moulin.delta`),
quality gates, training and reporting.
"""

__version__ = "0.1.0"
