"""The small PromQL reader the query checks rely on: it must find every metric and label and
nothing else, and refuse what it cannot follow."""

from __future__ import annotations

import pytest

from tests.observability.promql import PromQLError, output_labels, parse


def test_selectors_functions_and_labels() -> None:
    query = parse(
        "histogram_quantile(0.99, sum by (le, provider) "
        '(rate(gateway_overhead_seconds_bucket{streamed="true"}[$__rate_interval])))'
    )
    assert [(s.name, s.matchers, s.function) for s in query.selectors] == [
        ("gateway_overhead_seconds_bucket", ("streamed",), "rate")
    ]
    assert [(g.keyword, g.labels, g.scope) for g in query.groupings] == [
        ("by", ("le", "provider"), ("gateway_overhead_seconds_bucket",))
    ]
    assert query.top_function == "histogram_quantile"


def test_keywords_numbers_strings_and_offsets_are_not_metrics() -> None:
    query = parse(
        'sum by (job) (increase(x_total{outcome="dead_lettered", stream!~"a|b"}[15m])) > 0 '
        "or sum by (job) (x_total unless x_total offset 15m) and on (job) up == bool 1"
    )
    assert [s.name for s in query.selectors] == ["x_total", "x_total", "x_total", "up"]
    assert [s.offset for s in query.selectors] == [False, False, True, False]
    assert query.selectors[0].matchers == ("outcome", "stream")
    assert query.selectors[1].function == "sum"
    on = [g for g in query.groupings if g.keyword == "on"]
    assert on[0].scope == ("x_total", "x_total", "x_total", "up")


def test_grouping_after_the_argument() -> None:
    query = parse("sum(rate(a_total[5m])) by (provider) / sum(rate(b_total[5m])) by (provider)")
    assert [(g.labels, g.scope) for g in query.groupings] == [
        (("provider",), ("a_total",)),
        (("provider",), ("b_total",)),
    ]


def test_a_grouping_scope_is_its_aggregation_only() -> None:
    query = parse("max by (stream) (a) + on (stream) sum by (group) (b)")
    by = {g.labels: g.scope for g in query.groupings if g.keyword == "by"}
    assert by == {("stream",): ("a",), ("group",): ("b",)}


def test_recording_colons_and_subqueries() -> None:
    query = parse("deriv(stream_group:smoltbot_bus_lag:max[15m:1m]) > 0")
    assert [(s.name, s.function) for s in query.selectors] == [
        ("stream_group:smoltbot_bus_lag:max", "deriv")
    ]


@pytest.mark.parametrize(
    "expr",
    [
        '{__name__="x"}',
        'label_replace(up, "a", "$1", "job", "(.*)")',
        "made_up_function(x[5m])",
        "sum by job (x)",
        "sum(x",
        "rate(x[5m]) $oops",
    ],
)
def test_what_it_cannot_follow_is_an_error(expr: str) -> None:
    with pytest.raises(PromQLError):
        parse(expr)


def test_output_labels_of_recording_rules() -> None:
    labels_of = {"x_bucket": frozenset({"le", "provider", "job"}), "r": frozenset({"le", "p"})}
    assert output_labels(parse("sum by (le, provider) (rate(x_bucket[5m]))"), labels_of) == {
        "le",
        "provider",
    }
    assert output_labels(parse("histogram_quantile(0.9, r)"), labels_of) == {"p"}
    with pytest.raises(PromQLError):
        output_labels(parse("sum without (job) (x_bucket)"), labels_of)
