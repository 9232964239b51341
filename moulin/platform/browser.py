"""The system's Chromium (Debian package ``chromium``), for checks of the operator's
view driven by Playwright: no browser is downloaded."""

from __future__ import annotations

import shutil

from moulin.errors import MoulinError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


class BrowserMissing(MoulinError):
    """No Chromium is installed; the message says which package to install."""


def chromium_path() -> str:
    """Path of the installed Chromium (BrowserMissing naming the Debian package otherwise)."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserMissing(
        "no Chromium found on PATH (chromium, chromium-browser): install the Debian package "
        "`chromium` (bin/setup does: apt-get install -y chromium)"
    )
