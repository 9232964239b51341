"""Great Expectations' Data Docs pages that open styled with no network.

GE 1.24 renders a validation page whose styles and scripts come from CDNs
(Bootstrap, Bootstrap Table, jQuery, Font Awesome, Vega) and whose logo comes
from a web server: opened on a cluster's edge node or from an archive, such a page
is unstyled text.  :func:`offline_page` rewrites it: every remote stylesheet,
script and image goes, GE's own default styles (shipped in its package) and
moulin's small stand-in for the Bootstrap classes GE uses
(``moulin/quality/data_docs.css``) are inlined, and the page's inline scripts,
written for jQuery, are replaced by a few lines of plain JavaScript doing the
same (show/hide succeeded expectations, open collapsed sections).
:func:`remote_references` lists what a page would still load from a network.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

#: moulin's stand-in for the Bootstrap 4 / Font Awesome classes of GE's templates
#: (package data of moulin.quality, read through importlib.resources: also from a code zip).
STYLES = "data_docs.css"
#: What the page's buttons and collapsible sections call, without jQuery.
SCRIPT = """
function _moulinShow(show) {
  document.querySelectorAll('.hide-succeeded-validation-target-child, .hide-succeeded-validation-target')
    .forEach(function (el) {
      var target = el.classList.contains('hide-succeeded-validation-target') ? el : el.parentElement;
      target.style.display = show ? '' : 'none';
    });
}
function showAllValidations() { _moulinShow(true); }
function hideSucceededValidations() { _moulinShow(false); }
document.addEventListener('click', function (event) {
  var toggle = event.target.closest('[data-toggle="collapse"]');
  if (!toggle) { return; }
  event.preventDefault();
  var target = document.getElementById((toggle.getAttribute('href') || '').replace(/^#/, ''));
  if (target) { target.classList.toggle('show'); }
});
"""

_REMOTE = r"""["']?(?:https?:)?//[^"'\s>)]+"""
_LINK = re.compile(r"<link\b[^>]*>", re.I)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.I | re.S)
_IMG_REMOTE = re.compile(r"<img\b[^>]*\bsrc\s*=\s*" + _REMOTE + r"[^>]*>", re.I | re.S)
_CSS_URL_REMOTE = re.compile(r"""url\(\s*["']?(?:https?:)?//[^"')\s]+["']?\s*\)""", re.I)
_FOOTER = re.compile(r"<footer\b.*?</footer\s*>", re.I | re.S)
_INDEX_LINK = re.compile(r"""href=(["'])(?:\.\./)+index\.html\1""", re.I)
#: What a page loads: stylesheets and icons (link href), scripts, images, frames, CSS url().
_LOADS = re.compile(
    r"""<(?:link|script|img|iframe|source|embed)\b[^>]*\b(?:href|src)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)"""
    r"""|url\(\s*["']?((?:https?:)?//[^"')\s]+)""",
    re.I | re.S,
)


@lru_cache(maxsize=1)
def inline_styles() -> str:
    """GE's default Data Docs styles (from its package, when present) and moulin's stand-in."""
    parts = []
    try:
        from great_expectations.render.view import view

        ge_css = Path(view.__file__).parent / "static" / "styles" / "data_docs_default_styles.css"
        if ge_css.is_file():
            parts.append(ge_css.read_text())
    except ImportError:
        pass
    parts.append(resources.files("moulin.quality").joinpath(STYLES).read_text())
    return _CSS_URL_REMOTE.sub("none", "\n".join(parts))


def offline_page(html: str) -> str:
    """``html`` (a GE Data Docs page) with nothing to load from a network, styled inline."""
    if not html:
        return html
    page = _LINK.sub("", html)  # remote stylesheets, and the favicon the warehouse lacks
    page = _SCRIPT.sub("", page)  # CDN scripts, and the inline ones written for jQuery
    page = _IMG_REMOTE.sub("", page)
    page = _CSS_URL_REMOTE.sub("none", page)
    page = _FOOTER.sub("", page)  # GE's newsletter link
    page = _INDEX_LINK.sub('href="#"', page)  # a Data Docs site index moulin does not build
    head = f"<style>\n{inline_styles()}\n</style>\n"
    body = f"<script>{SCRIPT}</script>\n"
    page = re.sub(r"</head\s*>", lambda m: head + m.group(0), page, count=1, flags=re.I)
    return re.sub(r"</body\s*>", lambda m: body + m.group(0), page, count=1, flags=re.I)


def remote_references(html: str) -> list[str]:
    """The http(s) (or protocol-relative) URLs that ``html`` would load: stylesheets,
    scripts, images, frames and CSS ``url()``; links a reader may click are not loads."""
    return sorted({a or b for a, b in _LOADS.findall(html)})
