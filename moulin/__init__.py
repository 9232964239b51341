"""moulin: a data and deep-learning platform for Hadoop clusters.

Airflow DAGs, Spark jobs and training scripts all import this package:
settings (:mod:`moulin.settings`), Spark sessions (:mod:`moulin.spark`), the
local cluster (:mod:`moulin.cluster`), Delta storage (:mod:`moulin.delta`),
quality gates, training and reporting.
"""

import importlib
from types import ModuleType

__version__ = "0.1.0"

#: Modules that observe the Delta store's reads of personal data: the store imports
#: them before its first such read in a process (:mod:`moulin.delta.observers`),
#: and each registers its observer when imported.  The store itself imports none.
STORE_OBSERVERS = ("moulin.privacy.audit",)

#: Modules that register the stages of the job entry point: the stage registry imports
#: them before each look-up (:mod:`moulin.jobs.registry`); each registers its stages when
#: imported, and one that defines ``register_stages()`` (the use cases, found in their
#: folders) is called at each look-up too.  The registry itself imports none.
STAGE_MODULES = ("moulin.sources.jobs", "moulin.privacy.jobs", "moulin.usecases")

#: Modules that register what a task hands to the stages it submits (the pseudonym key
#: of an Airflow Connection): the submitter imports them first (:mod:`moulin.jobs.context`);
#: the job package imports none.
STAGE_HANDOVERS = ("moulin.privacy.keys",)

#: Modules that register the treatment of personal columns at bronze (pseudonyms, masks):
#: the gate imports them before it writes a contract that declares such columns
#: (:mod:`moulin.sources.treatments`), and stops when none registered one.  The sources
#: package itself imports none.
BRONZE_TREATMENTS = ("moulin.privacy.bronze_treatment",)


def declared_modules(wiring: str) -> tuple[str, ...]:
    """The modules that ``moulin.<wiring>`` names (:data:`STORE_OBSERVERS`,
    :data:`STAGE_MODULES`, :data:`STAGE_HANDOVERS`, :data:`BRONZE_TREATMENTS`)."""
    return tuple(globals().get(wiring, ()))


def import_declared(wiring: str) -> tuple[ModuleType, ...]:
    """Import the modules that ``moulin.<wiring>`` names, so that each registers what it
    provides; returns them (an import error propagates)."""
    return tuple(importlib.import_module(name) for name in declared_modules(wiring))
