"""Every PromQL expression in the dashboards and the rules selects only metrics the code exports
(the package catalogues, as tests/test_metrics_catalogue.py reads them), matches and groups only
on labels those metrics carry, and reads counters and histograms through rate()/increase() and
gauges never through them. Recording-rule outputs count as metrics with the labels their
expression keeps; `job` and `instance`, the labels Prometheus adds to every scraped series, are
allowed everywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache

import pytest

from tests.observability.promql import Query, output_labels, parse
from tests.observability.sources import (
    Series,
    dashboard_queries,
    exported,
    rule_queries,
    rules,
)

COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets"})
Check = Callable[[Query, dict[str, Series]], list[str]]


@cache
def known() -> dict[str, Series]:
    """Exported series plus the recording rules' outputs (in file order: a rule may read an
    earlier one)."""
    series = dict(exported())
    for rule in rules():
        if "record" not in rule:
            continue
        query = parse(rule["expr"])
        missing = query.metrics - set(series)
        assert not missing, f"recording rule {rule['record']} reads unknown {sorted(missing)}"
        labels_of = {name: s.labels for name, s in series.items()}
        labels = output_labels(query, labels_of) | frozenset(rule.get("labels", {}))
        series[rule["record"]] = Series(rule["record"], rule["record"], "recorded", labels)
    return series


def all_queries() -> Iterator[tuple[str, Query]]:
    for where, text in [*dashboard_queries(), *rule_queries()]:
        expr = text
        if text.startswith("label_values("):  # a dashboard variable: label_values(metric, label)
            metric, _, label = text.removeprefix("label_values(").removesuffix(")").rpartition(",")
            expr = f"count by ({label.strip()}) ({metric.strip()})"
        yield where, parse(expr)


def unknown_names(query: Query, series: dict[str, Series]) -> list[str]:
    return [s.name for s in query.selectors if s.name not in series]


def unknown_matchers(query: Query, series: dict[str, Series]) -> list[str]:
    return [
        f"{s.name}{{{label}}}"
        for s in query.selectors
        if s.name in series
        for label in s.matchers
        if label not in series[s.name].labels
    ]


def unknown_grouping_labels(query: Query, series: dict[str, Series]) -> list[str]:
    out = []
    for clause in query.groupings:
        if not clause.scope:
            out.append(f"{clause.keyword} (...) over no metric")
            continue
        if any(n not in series for n in clause.scope):
            continue  # unknown_names reports it
        have = frozenset().union(*(series[n].labels for n in clause.scope))
        out += [
            f"{clause.keyword} ({label}) over {sorted(set(clause.scope))}"
            for label in clause.labels
            if label not in have
        ]
    return out


def misread_types(query: Query, series: dict[str, Series]) -> list[str]:
    out = []
    offsets = {s.name for s in query.selectors if s.offset}
    for s in query.selectors:
        kind = series[s.name].kind if s.name in series else None
        in_rate = s.function in COUNTER_FUNCTIONS
        # One bare counter use is allowed: `x unless x offset d`, a series that appeared lately.
        if kind in ("counter", "bucket", "sum", "count") and not in_rate and s.name not in offsets:
            out.append(f"{kind} {s.name} outside rate()/increase()")
        elif kind == "gauge" and in_rate:
            out.append(f"gauge {s.name} inside {s.function}()")
    return out


def problems(check: Check) -> list[str]:
    series = known()
    return [f"{where}: {problem}" for where, q in all_queries() for problem in check(q, series)]


def test_there_are_queries_to_check() -> None:
    wheres = [where for where, _ in all_queries()]
    assert sum(w.startswith("rule ") for w in wheres) >= 20
    assert sum(not w.startswith("rule ") for w in wheres) >= 50


def test_every_query_names_only_exported_metrics() -> None:
    unknown = problems(unknown_names)
    assert unknown == [], "metrics no package exports (docs/metrics.md):\n" + "\n".join(unknown)


def test_every_matched_label_exists_on_its_metric() -> None:
    wrong = problems(unknown_matchers)
    assert wrong == [], "labels the metric does not carry:\n" + "\n".join(wrong)


def test_every_grouping_label_exists_on_the_metrics_it_groups() -> None:
    wrong = problems(unknown_grouping_labels)
    assert wrong == [], "grouping on labels the grouped metrics lack:\n" + "\n".join(wrong)


def test_counters_and_histograms_are_read_as_rates_and_gauges_never() -> None:
    wrong = problems(misread_types)
    assert wrong == [], "\n".join(wrong)


def test_recorded_series_are_named_level_metric_operation_after_what_they_keep() -> None:
    series = known()
    families = {s.family for s in exported().values()}
    for rule in rules():
        if "record" not in rule:
            continue
        name = rule["record"]
        level, metric, operation = name.split(":")
        assert operation, name
        assert any(metric.startswith(family.removesuffix("_total")) for family in families), (
            f"{name}: {metric} is no exported metric"
        )
        assert set(level.split("_")) == series[name].labels | ({"le"} & set(level.split("_"))), (
            f"{name}: level {level!r}, but the series keeps {sorted(series[name].labels)}"
        )


@pytest.mark.parametrize(
    ("expr", "caught_by"),
    [
        ('rate(gateway_requests_total{stauts="500"}[5m])', unknown_matchers),
        ("sum by (route) (rate(gateway_requests_total[5m]))", unknown_grouping_labels),
        ("sum(rate(gateway_requests_total[5m])) by (stream)", unknown_grouping_labels),
        ("rate(gateway_request_total[5m])", unknown_names),
        (
            "histogram_quantile(0.9, sum by (le) (rate(gateway_overhead_seconds[5m])))",
            unknown_names,
        ),
        ("sum by (le) (rate(smoltbot_bus_entries_total[5m]))", unknown_grouping_labels),
        ("rate(smoltbot_bus_lag[5m])", misread_types),
        ("sum(smoltbot_bus_entries_total)", misread_types),
        ("max(smoltbot_bus_lag_total)", unknown_names),
    ],
)
def test_the_checks_catch_mistakes(expr: str, caught_by: Check) -> None:
    """Each deliberately wrong query is caught by exactly the check meant for it."""
    series = known()
    query = parse(expr)
    checks: list[Check] = [unknown_names, unknown_matchers, unknown_grouping_labels, misread_types]
    caught = [check for check in checks if check(query, series)]
    assert caught == [caught_by]
