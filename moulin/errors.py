"""The base errors of moulin: the CLI prints these as one line, without a traceback."""


class MoulinError(RuntimeError):
    """An error the user can act on; its message names the thing and what to do."""


class DataError(MoulinError):
    """A deterministic error of the data or its description (contract, source spec,
    quality gate, schema): running again on the same input fails the same way, so
    jobs exit with :data:`DATA_ERROR_EXIT_CODE` and Airflow tasks fail without retries."""


#: Exit code of a job that failed on a :class:`DataError` (other failures exit with 1).
DATA_ERROR_EXIT_CODE = 3


class UnsafeNameError(DataError, ValueError):
    """A name that reaches SQL text or a warehouse path (a table, a column, a run id,
    a model name, a path part) is not of the allowed form; the message names the
    thing and says what is allowed (see :mod:`moulin.identifiers`)."""
