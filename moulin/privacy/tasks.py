"""Task bodies of the privacy DAGs (``dags/privacy.py``)."""

from __future__ import annotations

from moulin.jobs.submit import submit_job
from moulin.privacy.register import write_register
from moulin.privacy.requests import request_file
from moulin.settings import Settings, load_settings


def retention(ds: str | None, dry_run: bool, settings: Settings | None = None) -> dict:
    """Apply every contract's retention as of ``ds`` (Spark job ``privacy_retention``)."""
    import datetime as dt

    settings = settings or load_settings()
    args = ["--ds", ds or dt.date.today().isoformat()] + (["--dry-run"] if dry_run else [])
    result = submit_job(settings, "privacy_retention", args)
    for action in result["actions"]:
        verb = "would delete" if dry_run else "deleted"
        print(
            f"MOULIN-PROGRESS retention {action['target']}: {verb} {len(action['expired'])} partition(s)",
            flush=True,
        )
    return result


def erase(request_id: str, settings: Settings | None = None) -> dict:
    """Carry out registered erasure request ``request_id`` (Spark job ``privacy_erase``);
    the job's command line, the task's logs and XCom hold the request id, never the address."""

    settings = settings or load_settings()
    request_file(settings, request_id)  # a malformed id fails here, before any Spark
    result = submit_job(settings, "privacy_erase", ["--request", request_id])
    keep = ("request_id", "noop", "already_complete", "seconds", "proof_before", "proof_after")
    return {k: result[k] for k in keep if k in result}


def register(settings: Settings | None = None) -> str:
    """Regenerate the record of processing activities; returns its URI."""

    return write_register(settings or load_settings())
