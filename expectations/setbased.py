"""Set-based evaluation of the Great Expectations suites, for large frames.

The suites stay Great Expectations suites (``expectations/landing.py``, ``expectations/marts.py``):
the same expectation objects, severities and kwargs. What changes is the engine: instead of GX's
pandas engine (a pandas copy of the frame and one pass per expectation with result building),
every expectation of a suite becomes one Polars expression and the whole suite is evaluated in a
single aggregate over the frame; examples of unexpected values are fetched only for the
expectations that failed. The result is the same ``Check`` rows and a GX
``ExpectationSuiteValidationResult`` that Data Docs render like any other.

``tests/expectations/test_setbased.py`` runs both engines on the real sample batches and on broken
ones and requires identical checks. An expectation type or row condition this module does not
know raises ``Unsupported``; the runner then uses GX's engine for that suite.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl


class Unsupported(NotImplementedError):
    """The suite uses an expectation or a row condition the set-based engine does not evaluate."""


def _plain(value):
    """GX kwargs hold pandas Timestamps for dates."""
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    return value


def _bound(frame: pl.DataFrame, column: str, value):
    value = _plain(value)
    if value is None:
        return None
    if frame.schema[column] == pl.Date and isinstance(value, datetime):
        return pl.lit(value.date())
    return pl.lit(value)


def _condition_parts(cond) -> tuple[str, str, object] | None:
    if not cond:
        return None
    if isinstance(cond, dict) and {"column", "operator", "parameter"} <= set(cond):
        name = cond["column"]["name"] if isinstance(cond["column"], dict) else cond["column"]
        return name, cond["operator"], cond["parameter"]
    raise Unsupported(f"row condition {cond!r}")


def _condition(cond) -> pl.Expr | None:
    parts = _condition_parts(cond)
    if parts is None:
        return None
    name, op, value = parts
    ops = {"==": pl.col(name).eq, "!=": pl.col(name).ne, ">": pl.col(name).gt, ">=": pl.col(name).ge,
           "<": pl.col(name).lt, "<=": pl.col(name).le}
    if op not in ops:
        raise Unsupported(f"row condition operator {op!r}")
    return ops[op](pl.lit(value)).fill_null(False)


def column_label(kwargs: dict) -> str | None:
    """How a check names its column(s), the same for both engines (``expectations.runner``)."""
    column = kwargs.get("column") or (",".join(kwargs["column_list"]) if "column_list" in kwargs else None)
    if column is None and "column_A" in kwargs:
        column = f"{kwargs['column_A']},{kwargs['column_B']}"
    cond = kwargs.get("row_condition")
    if cond:
        if isinstance(cond, dict) and "pass_through_filter" in cond:
            cond = cond["pass_through_filter"]
        elif isinstance(cond, dict) and {"column", "operator", "parameter"} <= set(cond):
            name = cond["column"].get("name") if isinstance(cond["column"], dict) else cond["column"]
            cond = f"{name} {cond['operator']} {cond['parameter']!r}"
        column = f"{column} where {cond}"
    return column


def severity_of(cfg) -> str:
    return "warn" if str(cfg.severity).lower().endswith("warning") else "error"


def _sorted_without_nulls(frame: pl.DataFrame, cols: list[str]) -> bool:
    """Whether ``frame`` has no null in ``cols`` and its rows are in ascending order of them (a
    mart's frame is built in its key order). A few comparisons a row, against a hash of every key
    (about 0.35 s per 3M scoreboard rows)."""
    if any(frame[c].null_count() for c in cols):
        return False
    if frame.height < 2:
        return True
    ordered = pl.lit(True)
    for c in reversed(cols):  # (a, b) >= previous (a, b): a > a' or (a == a' and (b, …) >= (b', …))
        ordered = (pl.col(c) > pl.col(c).shift(1)) | ((pl.col(c) == pl.col(c).shift(1)) & ordered)
    return bool(frame.select(ordered.slice(1).all()).item())


def _same_as_neighbour(cols: list[str]) -> pl.Expr:
    """On rows sorted by ``cols`` without nulls: the row's key equals the row before or after it."""
    before = pl.all_horizontal([pl.col(c) == pl.col(c).shift(1) for c in cols]).fill_null(False)
    after = pl.all_horizontal([pl.col(c) == pl.col(c).shift(-1) for c in cols]).fill_null(False)
    return before | after


def checks(suite, frame: pl.DataFrame) -> list:
    """``expectations.runner.Check`` rows for ``suite`` on ``frame``, in the suite's order."""
    from expectations.runner import Check, plain_examples

    specs = []  # (config, kind, bad-row expression or value, index)
    aggs: list[pl.Expr] = []
    for i, exp in enumerate(suite.expectations):
        cfg = exp.configuration
        kw = dict(cfg.kwargs)
        t = cfg.type
        if kw.get("mostly") not in (None, 1, 1.0):
            raise Unsupported(f"{t} with mostly={kw['mostly']}")
        cond = _condition(kw.get("row_condition"))
        for name in [kw.get("column"), kw.get("column_A"), kw.get("column_B"), *(kw.get("column_list") or [])]:
            if name is not None and name not in frame.columns and t != "expect_table_columns_to_match_ordered_list":
                raise Unsupported(f"{t}: column {name!r} is not in the frame")
        if t == "expect_table_columns_to_match_ordered_list":
            specs.append((cfg, "table", frame.columns == list(kw["column_list"]), i))
            continue
        if t == "expect_compound_columns_to_be_unique":
            cols = list(kw["column_list"])
            ignore = kw.get("ignore_row_if", "all_values_are_missing")
            nulls = [pl.col(c).is_null() for c in cols]
            if ignore == "all_values_are_missing":
                skip = pl.all_horizontal(nulls)
            elif ignore == "any_value_is_missing":
                skip = pl.any_horizontal(nulls)
            elif ignore == "never":
                skip = pl.lit(False)
            else:
                raise Unsupported(f"{t} with ignore_row_if={ignore!r}")
            if _sorted_without_nulls(frame, cols):
                # equal keys are neighbours: a row is a duplicate when it equals the row before or after
                bad = _same_as_neighbour(cols)
            else:
                # the rows GX ignores take no part in the duplicate search
                bad = pl.when(~skip).then(pl.struct(cols).is_duplicated().over(skip)).otherwise(False)
        elif t == "expect_column_values_to_be_unique":
            c = pl.col(kw["column"])
            bad = c.is_duplicated() & c.is_not_null()
        elif t == "expect_column_values_to_not_be_null":
            bad = pl.col(kw["column"]).is_null()
        elif t == "expect_column_values_to_be_between":
            col = kw["column"]
            c = pl.col(col)
            lo, hi = _bound(frame, col, kw.get("min_value")), _bound(frame, col, kw.get("max_value"))
            parts = []
            if lo is not None:
                parts.append(c <= lo if kw.get("strict_min") else c < lo)
            if hi is not None:
                parts.append(c >= hi if kw.get("strict_max") else c > hi)
            bad = (c.is_not_null() & pl.any_horizontal(parts)) if parts else pl.lit(False)
        elif t == "expect_column_values_to_be_in_set":
            col = kw["column"]
            c = pl.col(col)
            allowed = pl.Series(list(kw["value_set"])).cast(frame.schema[col], strict=False)
            bad = c.is_not_null() & ~c.is_in(allowed.implode())
        elif t == "expect_column_pair_values_a_to_be_greater_than_b":
            a, b = pl.col(kw["column_A"]), pl.col(kw["column_B"])
            worse = a < b if kw.get("or_equal") else a <= b
            bad = a.is_not_null() & b.is_not_null() & worse
        elif t in ("expect_column_max_to_be_between", "expect_column_min_to_be_between"):
            c = pl.col(kw["column"])
            scope = c.filter(cond) if cond is not None else c
            aggs.append((scope.max() if "max_to" in t else scope.min()).alias(f"_obs{i}"))
            specs.append((cfg, "aggregate", None, i))
            continue
        elif t == "expect_column_distinct_values_to_contain_set":
            c = pl.col(kw["column"])
            scope = c.filter(cond) if cond is not None else c
            aggs.append(scope.unique().implode().alias(f"_obs{i}"))
            specs.append((cfg, "contains", None, i))
            continue
        else:
            raise Unsupported(t)
        if cond is not None:
            # GX evaluates a map expectation on the rows that meet the condition
            scoped = frame.filter(cond)
            specs.append((cfg, "scoped", (bad, scoped), i))
            continue
        aggs.append(bad.sum().alias(f"_bad{i}"))
        specs.append((cfg, "map", bad, i))
    row = frame.select(aggs).row(0, named=True) if aggs else {}
    out = []
    for cfg, kind, payload, i in specs:
        kw = cfg.kwargs
        column = column_label(kw)
        severity = severity_of(cfg)
        if kind == "table":
            out.append(Check(cfg.type, column, severity, bool(payload), None, None))
        elif kind == "aggregate":
            obs = row[f"_obs{i}"]
            lo, hi = _plain(kw.get("min_value")), _plain(kw.get("max_value"))
            if isinstance(obs, date) and not isinstance(obs, datetime):
                lo = lo.date() if isinstance(lo, datetime) else lo
                hi = hi.date() if isinstance(hi, datetime) else hi
            if obs is None:
                ok = False  # GX: the max of an empty column is not within any bounds
            else:
                ok = (lo is None or (obs > lo if kw.get("strict_min") else obs >= lo)) and \
                     (hi is None or (obs < hi if kw.get("strict_max") else obs <= hi))
            out.append(Check(cfg.type, column, severity, bool(ok), None, None))
        elif kind == "contains":
            missing = sorted(set(kw["value_set"]) - set(row[f"_obs{i}"] or []), key=str)
            out.append(Check(cfg.type, column, severity, not missing, None, None, missing[:5]))
        else:
            if kind == "scoped":
                bad, scoped = payload
                n = scoped.height
                flagged = scoped.filter(bad)
                unexpected = flagged.height
            else:
                bad, scoped, n = payload, frame, frame.height
                unexpected = int(row[f"_bad{i}"] or 0)
                flagged = frame.filter(bad) if unexpected else None
            examples = []
            if unexpected:
                cols = column.split(" where ")[0].split(",") if column else []
                head = flagged.select(cols).head(5)
                # as GX lists them: values of one column, a pair's values, or the columns of a row
                examples = head.to_series(0).to_list() if len(cols) == 1 else \
                    [list(r) for r in head.rows()] if "column_pair" in cfg.type else head.rows(named=True)
                examples = plain_examples(examples)
            out.append(Check(cfg.type, column, severity, unexpected == 0, n, unexpected, examples))
    return out


def gx_result(suite, found: list, columns: list[str] | None = None):
    """The GX validation result Data Docs render, built from the set-based checks (same order as
    the suite's expectations). ``columns`` are the validated frame's, which GX reports as the
    observed value of ``expect_table_columns_to_match_ordered_list`` (its page renderer orders the
    page's sections by them and renders no page without them)."""
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult

    results = []
    for exp, c in zip(suite.expectations, found):
        result: dict = {}
        if c.element_count is not None:
            result = {"element_count": c.element_count, "unexpected_count": c.unexpected_count,
                      "partial_unexpected_list": c.examples}
            if c.element_count:
                result["unexpected_percent"] = 100.0 * (c.unexpected_count or 0) / c.element_count
        elif exp.configuration.type == "expect_table_columns_to_match_ordered_list":
            result = {"observed_value": list(columns or [])}
        elif c.examples:
            result = {"details": {"missing": c.examples}}
        results.append(ExpectationValidationResult(success=c.success, expectation_config=exp.configuration,
                                                   result=result))
    ok = sum(c.success for c in found)
    return ExpectationSuiteValidationResult(
        success=all(c.success for c in found), results=results, suite_name=suite.name,
        statistics={"evaluated_expectations": len(found), "successful_expectations": ok,
                    "unsuccessful_expectations": len(found) - ok,
                    "success_percent": 100.0 * ok / len(found) if found else None})
