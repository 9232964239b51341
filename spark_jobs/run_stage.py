"""The application file ``spark-submit`` runs for every moulin stage.

    spark-submit [Spark options] spark_jobs/run_stage.py <stage> [--profile P] --ds YYYY-MM-DD [stage options]
    spark-submit spark_jobs/run_stage.py --help           (the registered stages)
    spark-submit spark_jobs/run_stage.py <stage> --help   (that stage's options)

Thin on purpose: :func:`moulin.jobs.entry.main` parses the arguments and runs
the stage from the registry (:mod:`moulin.jobs.registry`); the job server runs
the same function in its long-lived Spark application.  The job prints
``MOULIN-RESULT <json>`` with the stage's result.  Exit codes: 0 done, 3 a
deterministic data error (rerunning will not help), 1 any other failure.
"""

import sys

from moulin.jobs.entry import leave, main

if __name__ == "__main__":
    leave(main(sys.argv[1:]))
