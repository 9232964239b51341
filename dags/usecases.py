"""Airflow DAGs of the declared use cases: one DAG per ``usecase.py`` found in moulin's
``usecases/`` and in ``Settings.own_usecases_dir`` (those ``moulin usecase new`` writes),
built by the kit from the declaration (see moulin.usecases.kit)."""

from moulin.usecases.kit import usecase_dags

globals().update(usecase_dags(fileloc=__file__))
