"""The base error of moulin: the CLI prints these as one line, without a traceback."""


class MoulinError(RuntimeError):
    """An error the user can act on; its message names the thing and what to do."""
