"""One Spark job entry point for every stage: ``spark-submit spark_jobs/run_stage.py <stage> ...``
(the application file, thin: it calls :func:`moulin.jobs.entry.main`).

Stages are registered functions (:func:`moulin.jobs.registry.stage`), found in
:data:`~moulin.jobs.registry.PLATFORM_MODULES` and in each use case's
``jobs.py`` (:mod:`moulin.usecases`).  :func:`moulin.jobs.submit.submit_job`
runs one with ``spark-submit`` and returns its result.
"""
