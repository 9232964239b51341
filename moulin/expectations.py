"""Expectation types: one class each, holding everything about the type.

A type class says which fields a contract gives it and validates them
(:meth:`ExpectationType.parse`, errors naming file and field), how a row fails
it in Spark (:meth:`~ExpectationType.condition`), the readable reason of a
failed row (:meth:`~ExpectationType.message`) and its Great Expectations
counterpart (:meth:`~ExpectationType.ge`; None when GE has none).  A new type
is one class decorated with :func:`register`.

Row conditions follow Great Expectations: nulls pass every type but
``not_null``; for ``unique`` rows whose key columns are all null are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True)
class Expectation:
    """One expectation of a contract, already expanded (``not_null`` gives one per column)."""

    name: str
    type: str
    columns: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    sql: str | None = None
    description: str = ""

    @property
    def column(self) -> str | None:
        """The single column of a one-column expectation."""
        return self.columns[0] if len(self.columns) == 1 else None


class Checker(Protocol):
    """What :meth:`ExpectationType.parse` needs from the contract loader."""

    def fail(self, where: str, what: str) -> Exception: ...

    def str_list(self, value: Any, where: str) -> tuple[str, ...]: ...

    def known(self, names: tuple[str, ...], columns: set[str], where: str) -> None: ...


class ExpectationType:
    """Base of the expectation types (see the module docstring)."""

    type: ClassVar[str]

    @classmethod
    def parse(cls, item: dict, where: str, check: Checker, columns: set[str]) -> list[Expectation]:
        """The expectations of one contract item (validated; errors via ``check.fail``)."""
        raise NotImplementedError

    @staticmethod
    def condition(exp: Expectation):
        """A boolean Spark Column, true on the rows that fail ``exp``."""
        raise NotImplementedError

    @staticmethod
    def message(exp: Expectation):
        """A string Spark Column: why a row failed ``exp`` (quoting the value)."""
        raise NotImplementedError

    @staticmethod
    def ge(exp: Expectation, meta: dict) -> Any | None:
        """The Great Expectations expectation of ``exp`` (None: row-level check only)."""
        return None

    @staticmethod
    def one_column(item: dict, where: str, check: Checker, columns: set[str], kind: str) -> str:
        column = item.get("column")
        if not isinstance(column, str):
            raise check.fail(f"{where}.column", f"{kind} needs one column")
        check.known((column,), columns, f"{where}.column")
        return column


EXPECTATION_TYPES: dict[str, type[ExpectationType]] = {}


def register(cls: type[ExpectationType]) -> type[ExpectationType]:
    """Make ``cls`` the class of expectation type ``cls.type``."""
    EXPECTATION_TYPES[cls.type] = cls
    return cls


def expectation_type(name: str) -> type[ExpectationType]:
    """The class of expectation type ``name`` (KeyError naming the known ones)."""
    if name not in EXPECTATION_TYPES:
        raise KeyError(f"unknown expectation type {name!r}: use one of {', '.join(EXPECTATION_TYPES)}")
    return EXPECTATION_TYPES[name]


def _fmt(value: float | None) -> str:
    return "" if value is None else (str(int(value)) if float(value).is_integer() else str(value))


def _number(check: Checker, value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise check.fail(where, f"expected a number, got {value!r}")
    return float(value)


def _valued(exp: Expectation, rule: str):
    """``<column>=<value> <rule>`` as a Spark Column."""
    from pyspark.sql import functions as F

    value = F.coalesce(F.col(exp.column).cast("string"), F.lit("null"))
    return F.concat(F.lit(f"{exp.column}="), value, F.lit(f" {rule}"))


@register
class NotNull(ExpectationType):
    """``not_null`` (``columns``): one expectation per column, named ``not_null:<col>``."""

    type = "not_null"

    @classmethod
    def parse(cls, item, where, check, columns):
        cols = check.str_list(
            item.get("columns") or ([item["column"]] if "column" in item else None), f"{where}.columns"
        )
        if not cols:
            raise check.fail(f"{where}.columns", "not_null needs columns")
        check.known(cols, columns, f"{where}.columns")
        desc = str(item.get("description", ""))
        return [Expectation(f"not_null:{c}", cls.type, (c,), description=desc) for c in cols]

    @staticmethod
    def condition(exp):
        from pyspark.sql import functions as F

        return F.col(exp.column).isNull()

    @staticmethod
    def message(exp):
        from pyspark.sql import functions as F

        return F.lit(f"{exp.column} is missing")

    @staticmethod
    def ge(exp, meta):
        import great_expectations as gx

        return gx.expectations.ExpectColumnValuesToNotBeNull(column=exp.column, meta=meta)


@register
class Unique(ExpectationType):
    """``unique`` (``columns``): the (compound) key is unique; every row of a repeated key fails."""

    type = "unique"

    @classmethod
    def parse(cls, item, where, check, columns):
        cols = check.str_list(item.get("columns"), f"{where}.columns")
        if not cols:
            raise check.fail(f"{where}.columns", "unique needs columns")
        check.known(cols, columns, f"{where}.columns")
        name = item.get("name") or f"unique:{'+'.join(cols)}"
        return [Expectation(name, cls.type, cols, description=str(item.get("description", "")))]

    @staticmethod
    def condition(exp):
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        window = Window.partitionBy(*[F.col(c) for c in exp.columns])
        all_null = F.lit(True)
        for c in exp.columns:
            all_null = all_null & F.col(c).isNull()
        return ~all_null & (F.count(F.lit(1)).over(window) > 1)

    @staticmethod
    def message(exp):
        from pyspark.sql import functions as F

        return F.lit(f"key ({', '.join(exp.columns)}) is not unique")

    @staticmethod
    def ge(exp, meta):
        import great_expectations as gx

        if len(exp.columns) == 1:
            return gx.expectations.ExpectColumnValuesToBeUnique(column=exp.column, meta=meta)
        return gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=list(exp.columns), meta=meta)


@register
class InSet(ExpectationType):
    """``in_set`` (``column``, ``values``)."""

    type = "in_set"

    @classmethod
    def parse(cls, item, where, check, columns):
        column = cls.one_column(item, where, check, columns, cls.type)
        values = item.get("values")
        if not isinstance(values, list) or not values:
            raise check.fail(f"{where}.values", "in_set needs a non-empty list of values")
        name = item.get("name") or f"in_set:{column}"
        return [
            Expectation(
                name, cls.type, (column,), values=tuple(values), description=str(item.get("description", ""))
            )
        ]

    @staticmethod
    def condition(exp):
        from pyspark.sql import functions as F

        col = F.col(exp.column)
        return col.isNotNull() & ~col.isin(list(exp.values))

    @staticmethod
    def message(exp):
        return _valued(exp, f"not in {list(exp.values)}")

    @staticmethod
    def ge(exp, meta):
        import great_expectations as gx

        return gx.expectations.ExpectColumnValuesToBeInSet(
            column=exp.column, value_set=list(exp.values), meta=meta
        )


@register
class Between(ExpectationType):
    """``between`` (``column``, ``min`` and/or ``max``, inclusive)."""

    type = "between"

    @classmethod
    def parse(cls, item, where, check, columns):
        column = cls.one_column(item, where, check, columns, cls.type)
        lo, hi = (
            _number(check, item.get("min"), f"{where}.min"),
            _number(check, item.get("max"), f"{where}.max"),
        )
        if lo is None and hi is None:
            raise check.fail(where, "between needs min and/or max")
        if lo is not None and hi is not None and lo > hi:
            raise check.fail(where, f"min {lo} is above max {hi}")
        name = item.get("name") or f"between:{column}"
        return [
            Expectation(
                name, cls.type, (column,), min=lo, max=hi, description=str(item.get("description", ""))
            )
        ]

    @staticmethod
    def condition(exp):
        from pyspark.sql import functions as F

        col = F.col(exp.column)
        bad = F.lit(False)
        if exp.min is not None:
            bad = bad | (col < F.lit(exp.min))
        if exp.max is not None:
            bad = bad | (col > F.lit(exp.max))
        return col.isNotNull() & bad

    @staticmethod
    def message(exp):
        return _valued(exp, f"not between {_fmt(exp.min) or '-inf'} and {_fmt(exp.max) or '+inf'}")

    @staticmethod
    def ge(exp, meta):
        import great_expectations as gx

        return gx.expectations.ExpectColumnValuesToBeBetween(
            column=exp.column, min_value=exp.min, max_value=exp.max, meta=meta
        )


@register
class Regex(ExpectationType):
    """``regex`` (``column``, ``pattern``): the value matches the pattern (anywhere; anchor it for whole values)."""

    type = "regex"

    @classmethod
    def parse(cls, item, where, check, columns):
        column = cls.one_column(item, where, check, columns, cls.type)
        pattern = item.get("pattern")
        try:
            re.compile(pattern)
        except (TypeError, re.error) as exc:
            raise check.fail(f"{where}.pattern", f"invalid regular expression {pattern!r}: {exc}") from None
        name = item.get("name") or f"regex:{column}"
        return [
            Expectation(
                name, cls.type, (column,), pattern=pattern, description=str(item.get("description", ""))
            )
        ]

    @staticmethod
    def condition(exp):
        from pyspark.sql import functions as F

        col = F.col(exp.column)
        return col.isNotNull() & ~col.rlike(exp.pattern)

    @staticmethod
    def message(exp):
        return _valued(exp, f"does not match {exp.pattern}")

    @staticmethod
    def ge(exp, meta):
        import great_expectations as gx

        return gx.expectations.ExpectColumnValuesToMatchRegex(column=exp.column, regex=exp.pattern, meta=meta)


@register
class SqlExpression(ExpectationType):
    """``expression`` (``name``, ``sql``): a Spark SQL boolean that holds for good rows (a null
    result fails); checked row by row only (no Great Expectations twin)."""

    type = "expression"

    @classmethod
    def parse(cls, item, where, check, columns):
        sql, name = item.get("sql"), item.get("name")
        if not isinstance(sql, str) or not sql.strip():
            raise check.fail(f"{where}.sql", "expression needs a Spark SQL boolean in sql")
        if not name:
            raise check.fail(f"{where}.name", "expression needs a name")
        return [Expectation(str(name), cls.type, (), sql=sql, description=str(item.get("description", "")))]

    @staticmethod
    def condition(exp):
        from pyspark.sql import functions as F

        return ~F.coalesce(F.expr(exp.sql).cast("boolean"), F.lit(False))

    @staticmethod
    def message(exp):
        from pyspark.sql import functions as F

        return F.lit(f"{exp.name} does not hold ({exp.sql})")
