"""Use cases: one folder each (its framing, transforms, stages, task bodies, parameters, report wording).

A use case's ``framing.yaml`` states its question, decision, task, metric and
threshold, data, storage, personal data and hardware (:mod:`moulin.framing`,
``docs/guides/framing.md``); its report renders them.

A use case registers its Spark stages in ``<folder>/jobs.py`` (see
:mod:`moulin.jobs`); the platform packages (ingest, quality, delta, training,
reporting) hold no use case's constants.
"""
