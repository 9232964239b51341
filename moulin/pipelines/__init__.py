"""Use-case pipelines: the task bodies of the DAGs and the main-command runner."""
