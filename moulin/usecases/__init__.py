"""Use cases: one folder each (transforms, stages, task bodies, parameters, report wording).

A use case registers its Spark stages in ``<folder>/jobs.py`` (see
:mod:`moulin.jobs`); the platform packages (ingest, quality, delta, training,
reporting) hold no use case's constants.
"""
