"""The base errors of moulin: the CLI prints these as one line, without a traceback."""


class MoulinError(RuntimeError):
    """An error the user can act on; its message names the thing and what to do."""


class DataError(MoulinError):
    """A deterministic error of the data or its description (contract, source spec,
    quality gate, schema): running again on the same input fails the same way, so
    jobs exit with :data:`DATA_ERROR_EXIT_CODE` and Airflow tasks fail without retries."""


#: Exit code of a job that failed on a :class:`DataError` (other failures exit with 1).
DATA_ERROR_EXIT_CODE = 3
