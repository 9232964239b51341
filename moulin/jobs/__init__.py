"""One Spark job entry point for every stage: ``spark-submit spark_jobs/run_stage.py <stage> ...``
(the application file, thin: it calls :func:`moulin.jobs.entry.main`).

Stages are registered functions (:func:`moulin.jobs.registry.stage`) of the
modules that ``moulin.STAGE_MODULES`` names: the sources' and privacy's
``jobs.py``, and the use cases (:mod:`moulin.usecases`: each folder's ``jobs.py``
and the stages the kit generates from each ``usecase.py``).  :func:`moulin.jobs.submit.submit_job`
runs one with ``spark-submit`` and returns its result.
"""
