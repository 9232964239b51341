"""moulin: a data and deep-learning platform for Hadoop clusters.

Airflow DAGs, Spark jobs and training scripts all import this package:
settings (:mod:`moulin.settings`), Spark sessions (:mod:`moulin.spark`), the
local cluster (:mod:`moulin.cluster`), Delta storage (:mod:`moulin.delta`),
quality gates, training and reporting.
"""

__version__ = "0.1.0"

#: Modules that observe the Delta store's reads of personal data: the store imports
#: them before its first such read in a process (:mod:`moulin.delta.observers`),
#: and each registers its observer when imported.  The store itself imports none.
STORE_OBSERVERS = ("moulin.privacy.audit",)
