"""The caller's context of a stage: which Airflow task asked for it, and what that
task handed to it (the pseudonym key, see :mod:`moulin.privacy.keys`).

Under ``spark-submit`` a stage is a process of its own: its environment is its
caller's, so ``AIRFLOW_CTX_*`` name the right task.  A job server
(:mod:`moulin.jobs.server`) is one long-lived process that runs the stages of
many tasks: its own environment holds the variables of whichever task started
it.  So the caller sends :func:`caller_context` with each request, the server
applies it around that request's stage (:func:`applied`, cleared after), and
code that asks "who am I running for" reads :func:`getenv`, never
``os.environ`` directly.  The server runs one stage at a time, so one context
holds for the whole process while the stage runs (threads the stage starts see
it too).

What a task hands to its stage is not known here: a package registers a
*handover* (:func:`register_handover`, :mod:`moulin.privacy.keys` does), and the
submitter asks :func:`handovers` for their values.  So that a task process that
never imported such a package hands its values too, :func:`handovers` first
imports the modules that moulin's root package names in ``moulin.STAGE_HANDOVERS``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping

import moulin

#: The variables naming the Airflow task (set by Airflow in the task's process).
AIRFLOW_CONTEXT_PREFIX = "AIRFLOW_CTX_"
#: Variables a caller may hand to its stage besides its task context (the key, never on argv).
HANDED = frozenset({"MOULIN_PSEUDONYM_KEY"})

#: Called in the process that submits a stage: the variables (names in :data:`HANDED`) to hand to it.
Handover = Callable[[], Mapping[str, str]]

_current: dict[str, str] | None = None
_handovers: list[Handover] = []
_lock = threading.Lock()


def _sendable(name: str) -> bool:
    return name.startswith(AIRFLOW_CONTEXT_PREFIX) or name in HANDED


def caller_context(env: Mapping[str, str] | None = None, **handed: str) -> dict[str, str]:
    """The context a caller sends with its request: its ``AIRFLOW_CTX_*`` variables
    (of ``env``, default this process's) plus ``handed`` (names in :data:`HANDED`)."""
    env = os.environ if env is None else env
    out = {k: v for k, v in env.items() if k.startswith(AIRFLOW_CONTEXT_PREFIX)}
    for name, value in handed.items():
        if name not in HANDED:
            raise ValueError(f"{name} cannot be handed to a stage: only {sorted(HANDED)}")
        out[name] = value
    return out


@contextlib.contextmanager
def applied(context: Mapping[str, str]) -> Iterator[None]:
    """Make ``context`` (a request's :func:`caller_context`) what :func:`getenv` answers
    until the block ends; names outside the task context and :data:`HANDED` are ignored."""
    global _current
    previous = _current
    _current = {str(k): str(v) for k, v in context.items() if _sendable(str(k))}
    try:
        yield
    finally:
        _current = previous


def getenv(name: str) -> str | None:
    """``name`` as the stage's caller sees it.

    Inside a request (:func:`applied`): the request's value; an ``AIRFLOW_CTX_*``
    variable the request did not send is unset (never the server's inherited
    one), any other name falls back to this process's environment.  Outside a
    request: this process's environment.
    """
    if _current is not None:
        if name in _current:
            return _current[name]
        if name.startswith(AIRFLOW_CONTEXT_PREFIX):
            return None
    return os.environ.get(name)


def register_handover(handover: Handover) -> Handover:
    """Hand what ``handover`` returns to every stage this process submits (once, however
    often it is registered); returns it, so that this works as a decorator."""
    with _lock:
        if handover not in _handovers:
            _handovers.append(handover)
    return handover


def handovers() -> dict[str, str]:
    """What this process hands to the stage it submits: the values of every registered
    handover (the declared modules imported first; an import error propagates)."""
    moulin.import_declared("STAGE_HANDOVERS")
    with _lock:
        registered = tuple(_handovers)
    out: dict[str, str] = {}
    for handover in registered:
        out.update(handover())
    return out
