"""Simple predicates: ``(column, op, value)`` triples for reads and ``replace_where``.

They drive partition pruning and statistics-based file skipping (a file is kept
unless its partition values or min/max/null counts prove that no row can match),
and are then applied row by row by the engine, so results are always exact.
Supported operators: ``=``, ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``,
``not in``, ``is null``, ``is not null`` (value None).  Comparisons never match
nulls (SQL semantics); NaN compares as Spark does (equal to itself, above
every other number), so a NaN target never lets a file be skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from moulin.delta.errors import DeltaStoreError

OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "is not null")
NULL_OPS = ("is null", "is not null")
Predicate = tuple[str, str, Any]


def normalize_filters(table_uri: str, filters: Any, columns: Mapping[str, str]) -> list[Predicate]:
    """Validated ``(column, op, value)`` triples; ``columns`` maps names to Spark type names.

    ``filters`` is a list of triples, a dict ``{column: value}`` (equality) or a
    SQL-like string ``"a = 1 AND b IN ('x', 'y')"``.
    """
    if filters is None:
        return []
    if isinstance(filters, str):
        triples = parse_predicate(table_uri, filters)
    elif isinstance(filters, Mapping):
        triples = [(k, "=", v) for k, v in filters.items()]
    else:
        triples = list(filters)
    out = []
    for item in triples:
        if not (isinstance(item, Sequence) and len(item) == 3):
            raise DeltaStoreError(
                f"filter {item!r} on table {table_uri} is not a (column, op, value) triple, "
                "e.g. ('month', '=', 1)"
            )
        col, op, value = item
        op = " ".join(str(op).strip().lower().split())
        op = "=" if op == "==" else op
        if op not in OPS:
            raise DeltaStoreError(f"filter operator {op!r} on table {table_uri}: use one of {', '.join(OPS)}")
        if col not in columns:
            raise DeltaStoreError(
                f"filter column {col!r} is not a column of table {table_uri} (columns: {', '.join(columns)})"
            )
        type_name = columns[col]
        if op in NULL_OPS:
            if value is not None:
                raise DeltaStoreError(f"filter {col} {op} takes no value (pass None) on table {table_uri}")
        elif op in ("in", "not in"):
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                raise DeltaStoreError(f"filter {col} {op} needs a list of values (table {table_uri})")
            value = [coerce(table_uri, col, type_name, v) for v in value]
        else:
            if value is None:
                raise DeltaStoreError(
                    f"filter {col} {op} None on table {table_uri}: comparisons never match nulls; "
                    "filter nulls with the DataFrame API"
                )
            value = coerce(table_uri, col, type_name, value)
        out.append((col, op, value))
    return out


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
    r"|(?P<op><=|>=|!=|<>|==|=|<|>)|(?P<punct>[(),])|(?P<word>`[^`]+`|[A-Za-z_][A-Za-z0-9_.]*))"
)


def _tokens(text: str, table_uri: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise DeltaStoreError(
                f"cannot parse predicate {text!r} for table {table_uri} near {text[pos:]!r}"
            )
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _literal(kind: str, tok: str) -> Any:
    if kind == "str":
        return tok[1:-1].replace("''", "'")
    if kind == "num":
        return float(tok) if any(c in tok for c in ".eE") else int(tok)
    low = tok.lower()
    if low in ("true", "false"):
        return low == "true"
    raise ValueError(tok)


def parse_predicate(table_uri: str, text: str) -> list[Predicate]:
    """Parse ``"a = 1 AND b IN ('x', 'y') AND c >= '2013-01-01'"`` into triples."""
    toks = _tokens(text, table_uri)
    out: list[Predicate] = []
    i = 0

    def fail(why: str):
        raise DeltaStoreError(
            f"cannot parse predicate {text!r} for table {table_uri}: {why}; write conjunctions of "
            "'column op literal' (op: = != < <= > >= IN, NOT IN) joined by AND"
        )

    while i < len(toks):
        if toks[i][0] != "word":
            fail(f"expected a column name at {toks[i][1]!r}")
        col = toks[i][1].strip("`")
        i += 1
        if i < len(toks) and toks[i][0] == "word" and toks[i][1].lower() in ("in", "not"):
            op = "in"
            if toks[i][1].lower() == "not":
                i += 1
                if i >= len(toks) or toks[i][1].lower() != "in":
                    fail("NOT must be followed by IN")
                op = "not in"
            i += 1
            if i >= len(toks) or toks[i][1] != "(":
                fail("IN needs a parenthesized list")
            i += 1
            values = []
            while i < len(toks) and toks[i][1] != ")":
                if toks[i][1] != ",":
                    try:
                        values.append(_literal(*toks[i]))
                    except ValueError:
                        fail(f"{toks[i][1]!r} is not a literal")
                i += 1
            if i >= len(toks):
                fail("unclosed IN list")
            i += 1
            out.append((col, op, values))
        elif i < len(toks) and toks[i][0] == "word" and toks[i][1].lower() == "is":
            i += 1
            negated = i < len(toks) and toks[i][1].lower() == "not"
            i += 1 if negated else 0
            if i >= len(toks) or toks[i][1].lower() != "null":
                fail("IS must be followed by NULL or NOT NULL")
            i += 1
            out.append((col, "is not null" if negated else "is null", None))
        elif i < len(toks) and toks[i][0] == "op":
            op = {"==": "=", "<>": "!="}.get(toks[i][1], toks[i][1])
            i += 1
            if i >= len(toks):
                fail("missing value")
            try:
                out.append((col, op, _literal(*toks[i])))
            except ValueError:
                fail(f"{toks[i][1]!r} is not a literal")
            i += 1
        else:
            fail(f"expected an operator after {col!r}")
        if i < len(toks):
            if toks[i][0] == "word" and toks[i][1].lower() == "and":
                i += 1
            else:
                fail(f"expected AND at {toks[i][1]!r}")
    if not out:
        fail("empty predicate")
    return out


def _parse_ts(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def coerce(table_uri: str, col: str, type_name: str, value: Any) -> Any:
    """``value`` as the Python value of Spark type ``type_name`` (timestamps: aware, UTC)."""
    if value is None:
        return None
    try:
        if type_name in ("byte", "short", "integer", "long"):
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if type_name in ("float", "double"):
            return float(value)
        if type_name == "string":
            if not isinstance(value, str):
                raise ValueError
            return value
        if type_name == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError
        if type_name == "date":
            if isinstance(value, dt.datetime):
                return value.date()
            if isinstance(value, dt.date):
                return value
            return dt.date.fromisoformat(str(value)[:10])
        if type_name in ("timestamp", "timestamp_ntz"):
            if isinstance(value, dt.datetime):
                ts = value
            elif isinstance(value, dt.date):
                ts = dt.datetime(value.year, value.month, value.day)
            else:
                ts = _parse_ts(str(value))
            ts = ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
            return ts.astimezone(dt.UTC)
    except (ValueError, TypeError):
        raise DeltaStoreError(
            f"filter value {value!r} does not fit column {col!r} of type {type_name} in table {table_uri}"
        ) from None
    return value  # other types: compared by the engine only


def partition_value(type_name: str, raw: str | None) -> Any:
    """A Delta partition value string as a Python value (None for null)."""
    if raw is None:
        return None
    if type_name == "string":
        return raw
    if raw == "":
        return None
    return coerce("", "", type_name, raw)


def format_partition_value(value: Any) -> str | None:
    """A Python value as a Delta partition value string (replaceWhere filters)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _cmp(op: str, left: Any, right: Any) -> bool:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "in":
        return left in right
    return left not in right


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def value_matches(op: str, value: Any, target: Any) -> bool:
    """Exact evaluation of ``value op target`` with SQL null semantics."""
    if op == "is null":
        return value is None
    if op == "is not null":
        return value is not None
    if value is None:
        return False
    return _cmp(op, value, target)


def range_may_match(op: str, lo: Any, hi: Any, target: Any) -> bool:
    """Whether some value in ``[lo, hi]`` (either bound None: unknown) may satisfy ``op target``."""
    if op in NULL_OPS:
        return True  # decided by null counts, not by the range
    targets = target if op in ("in", "not in") else [target]
    if any(_is_nan(t) for t in targets) or _is_nan(lo) or _is_nan(hi):
        return True  # NaN sorts above every number in Spark: no range excludes it
    try:
        if op == "=":
            return (lo is None or lo <= target) and (hi is None or target <= hi)
        if op == "in":
            return any((lo is None or lo <= t) and (hi is None or t <= hi) for t in target)
        if op == "<":
            return lo is None or lo < target
        if op == "<=":
            return lo is None or lo <= target
        if op == ">":
            return hi is None or hi > target
        if op == ">=":
            return hi is None or hi >= target
        if op == "!=":
            return not (lo is not None and hi is not None and lo == hi == target)
        if op == "not in":
            return not (lo is not None and hi is not None and lo == hi and lo in target)
    except TypeError:
        return True
    return True


def to_column(pred: Predicate, type_name: str | None = None):
    """A Spark ``Column`` for ``pred``.

    On float/double columns the comparison is kept out of the Parquet reader's
    row-group filtering: writers other than Spark (deltalake's OPTIMIZE and
    MERGE) leave NaN out of the footer maxima, and Spark orders NaN above every
    number, so that filtering would drop NaN rows.
    """
    from pyspark.sql import functions as F

    col, op, value = pred
    c = F.col(f"`{col}`")
    if type_name in ("float", "double") and op not in NULL_OPS:
        c = F.nanvl(c, c)  # the same value, but not a bare column: never pushed down
    if op == "is null":
        return c.isNull()
    if op == "is not null":
        return c.isNotNull()
    if op == "=":
        return c == F.lit(value)
    if op == "!=":
        return c != F.lit(value)
    if op == "<":
        return c < F.lit(value)
    if op == "<=":
        return c <= F.lit(value)
    if op == ">":
        return c > F.lit(value)
    if op == ">=":
        return c >= F.lit(value)
    if op == "in":
        return c.isin(list(value))
    return ~c.isin(list(value))


def to_arrow_expression(preds: list[Predicate]):
    """A pyarrow ``Expression`` for the conjunction of ``preds`` (None when empty)."""
    import pyarrow.compute as pc

    expr = None
    for col, op, value in preds:
        f = pc.field(col)
        if op == "is null":
            e = f.is_null()
        elif op == "is not null":
            e = ~f.is_null()
        elif op == "=":
            e = f == value
        elif op == "!=":
            e = f != value
        elif op == "<":
            e = f < value
        elif op == "<=":
            e = f <= value
        elif op == ">":
            e = f > value
        elif op == ">=":
            e = f >= value
        elif op == "in":
            e = f.isin(list(value))
        else:
            e = ~f.isin(list(value))
        expr = e if expr is None else expr & e
    return expr
