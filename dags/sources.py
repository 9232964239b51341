"""Airflow DAGs of the sources: one ingest DAG per source spec (``sources/*.yaml`` beside the contracts, in
``$MOULIN_CONTRACTS_DIR`` or moulin's ``schemas/``): land → quality gate → bronze.
Adding a source is adding a spec and its contract (see the README, "Add a source")."""

from moulin.sources.dags import source_dags

globals().update(source_dags())
