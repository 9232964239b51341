"""HTML building blocks of the report: escaping, number formatting, tables, page shell.

All text that comes from data goes through :func:`esc` (or a table cell, which
escapes unless the value is :class:`Markup`).  The page is self-contained: CSS
inline, images as data URIs, system fonts only.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

from moulin.training.compared_models import Metric

NOT_AVAILABLE = "not available"
DASH = "—"


class Markup(str):
    """A string that is already safe HTML (not escaped again)."""


def esc(value: Any) -> Markup:
    """``value`` as escaped HTML text (Markup passes through)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    return Markup(sep.join(esc(p) for p in parts))


def tag(name: str, content: Any = "", **attrs: Any) -> Markup:
    """``<name attrs>content</name>``; attribute values escaped, ``class_`` -> ``class``."""
    rendered = "".join(
        f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None
    )
    return Markup(f"<{name}{rendered}>{esc(content)}</{name}>")


# -- numbers
def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_int(x: Any) -> str:
    return DASH if _missing(x) else f"{int(round(float(x))):,}"


def fmt_num(x: Any) -> str:
    """A statistic with sensible rounding: integers with separators, else 2-3 significant digits."""
    if _missing(x):
        return DASH
    x = float(x)
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def fmt_pct(x: Any, digits: int = 1, trim: bool = False) -> str:
    """A share (0..1) as a percentage; tiny non-zero shares keep two significant digits.

    ``trim`` drops trailing zeros (``1.00%`` -> ``1%``), for limits and small shares.
    """
    if _missing(x):
        return DASH
    x = float(x) * 100
    if x == 0:
        return "0%"
    if abs(x) < 10 ** (-digits):
        return f"{x:.2g}%"
    out = f"{x:.{digits}f}"
    if trim and "." in out:
        out = out.rstrip("0").rstrip(".")
    return out + "%"


def fmt_metric(x: Any, digits: int = 3) -> str:
    return DASH if _missing(x) else f"{float(x):.{digits}f}"


def fmt_ci(m: Metric | None, digits: int = 3) -> Markup:
    """``0.712 (0.705–0.719)``; the interval in a muted span."""
    if m is None or m.value is None:
        return Markup(DASH)
    out = esc(fmt_metric(m.value, digits))
    if m.ci_low is not None and m.ci_high is not None:
        ci = f"{fmt_metric(m.ci_low, digits)}–{fmt_metric(m.ci_high, digits)}"
        out = Markup(f'{out} <span class="ci">({esc(ci)})</span>')
    return out


def fmt_seconds(x: Any) -> str:
    if _missing(x):
        return DASH
    s = float(x)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(round(s % 60))} s"
    return f"{int(s // 3600)} h {int(round((s % 3600) / 60))} min"


# -- blocks
def badge(
    ok: bool | None, ok_text: str = "OK", fail_text: str = "FAILED", title: str | None = None
) -> Markup:
    if ok is None:
        return tag("span", NOT_AVAILABLE, class_="badge na", title=title)
    return tag("span", ok_text if ok else fail_text, class_="badge ok" if ok else "badge fail", title=title)


def table(
    headers: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    numeric: Sequence[int] = (),
    class_: str | None = None,
    row_classes: Sequence[str | None] | None = None,
) -> Markup:
    """A table; cells are escaped unless Markup; columns in ``numeric`` are right-aligned."""
    num = set(numeric)
    head = "".join(str(tag("th", h, class_="num" if i in num else None)) for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cells = "".join(str(tag("td", c, class_="num" if i in num else None)) for i, c in enumerate(row))
        cls = row_classes[r] if row_classes and r < len(row_classes) else None
        body.append(str(tag("tr", Markup(cells), class_=cls)))
    cls = f' class="{esc(class_)}"' if class_ else ""
    return Markup(
        f'<div class="table-wrap"><table{cls}>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def figure(data_uri: str | None, alt: str, caption: Any = None) -> Markup:
    """An inline image with a caption, or a "not available" note."""
    if not data_uri:
        return Markup(f'<p class="na">{esc(alt)}: {NOT_AVAILABLE}.</p>')
    if not data_uri.startswith("data:image/"):
        raise ValueError("figures must be inline data URIs")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return Markup(f'<figure><img src="{esc(data_uri)}" alt="{esc(alt)}">{cap}</figure>')


def page_header(title: str, subtitle: str, toc: Sequence[tuple[str, str]]) -> Markup:
    """The top of a report: its title, a line under it and links to its sections
    (``(anchor, label)`` each)."""
    nav = "".join(str(tag("a", label, href=f"#{anchor}")) for anchor, label in toc)
    return Markup(
        f'<header class="top"><h1>{esc(title)}</h1>'
        f'<div class="sub">{esc(subtitle)}</div>'
        f'<nav class="toc">{nav}</nav></header>'
    )


def glossary(entries: Iterable[tuple[str, str]]) -> Markup:
    """Terms and what they mean (``(term, meaning)`` each), as a definition list."""
    return Markup(
        '<dl class="glossary">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in entries) + "</dl>"
    )


def section(anchor: str, title: str, *content: Any, class_: str | None = None) -> Markup:
    cls = f' class="{esc(class_)}"' if class_ else ""
    body = "".join(str(esc(c)) for c in content)
    return Markup(f'<section id="{esc(anchor)}"{cls}><h2>{esc(title)}</h2>{body}</section>')


def para(content: Any, class_: str | None = None) -> Markup:
    return tag("p", content, class_=class_)


def bullets(items: Iterable[Any], class_: str | None = None) -> Markup:
    lis = "".join(str(tag("li", i)) for i in items)
    cls = f' class="{esc(class_)}"' if class_ else ""
    return Markup(f"<ul{cls}>{lis}</ul>")


CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d8dee4; --bg-soft:#f6f8fa; --ok:#1a7f37; --fail:#cf222e;
        --accent:#0b5cad; }
* { box-sizing: border-box; }
body { margin:0; color:var(--fg); background:#fff;
       font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Liberation Sans", sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 32px 64px; }
header.top { border-bottom: 3px solid var(--accent); padding-bottom: 12px; margin-bottom: 8px; }
header.top h1 { font-size: 26px; margin: 0 0 4px; line-height: 1.25; }
header.top .sub { color: var(--muted); font-size: 13.5px; }
nav.toc { font-size: 13.5px; margin: 10px 0 4px; color: var(--muted); }
nav.toc a { color: var(--accent); text-decoration: none; margin-right: 14px; white-space: nowrap; }
h2 { font-size: 20px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; }
p { margin: 8px 0; }
.muted, .ci { color: var(--muted); }
.ci { font-size: 12.5px; white-space: nowrap; }
.na { color: var(--muted); font-style: italic; }
.summary { background: var(--bg-soft); border: 1px solid var(--line); border-left: 5px solid var(--accent);
           border-radius: 6px; padding: 6px 20px 10px; }
.summary h2 { border: 0; margin-top: 10px; }
.summary ul { padding-left: 20px; margin: 6px 0; }
.summary li { margin: 5px 0; }
.question { font-size: 16px; }
.table-wrap { overflow-x: auto; margin: 8px 0 14px; }
table { border-collapse: collapse; font-size: 13.5px; width: 100%; }
th, td { padding: 5px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--bg-soft); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #eef6ff; font-weight: 600; }
tr.flag td { background: #fff5f5; }
tr.small td { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 700;
         letter-spacing: .02em; }
.badge.ok { background: #dafbe1; color: var(--ok); }
.badge.fail { background: #ffebe9; color: var(--fail); }
.badge.na { background: var(--bg-soft); color: var(--muted); font-weight: 400; }
.alert { border: 1px solid #ffcecb; background: #fff5f5; border-left: 5px solid var(--fail); border-radius: 6px;
         padding: 8px 14px; margin: 10px 0; }
.good { border: 1px solid #aceebb; background: #f3fdf5; border-left: 5px solid var(--ok); border-radius: 6px;
        padding: 8px 14px; margin: 10px 0; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; align-items: start; }
@media (max-width: 820px) { .grid2 { grid-template-columns: 1fr; } main { padding: 16px; } }
dl.glossary { font-size: 13.5px; display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 6px 0; }
dl.glossary dt { font-weight: 600; }
dl.glossary dd { margin: 0; color: var(--muted); }
section.appendix { margin-top: 48px; border-top: 3px double var(--line); }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
              font-size: 12.5px; word-break: break-all; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
@media print { main { max-width: none; } section { break-inside: avoid-page; } }
"""


def page(title: str, header: Markup, body: Sequence[Markup]) -> str:
    """The complete HTML document."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{header}{''.join(str(b) for b in body)}</main></body></html>\n"
    )
