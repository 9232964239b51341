#!/usr/bin/env bash
# Container entry point: Airflow roles get moulin's Airflow environment, the
# rest run as given (e.g. `moulin daemon namenode`).
set -euo pipefail
case "${1:-}" in
  airflow)
    eval "$(python -c 'from moulin.orchestration import airflow_env; from moulin.settings import load_settings
import shlex
for k, v in airflow_env(load_settings()).items():
    if k != "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": print(f"export {k}={shlex.quote(v)}")')"
    ;;
esac
exec "$@"
