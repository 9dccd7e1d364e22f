"""A small reader for the PromQL our dashboards and rules use: the metric selectors of an
expression (name, matched labels, the function around them) and the labels its grouping
clauses name, with the selectors each clause applies to.

Not a full parser. It knows selectors, range and subquery brackets, offsets, strings, numbers,
functions, aggregations with ``by``/``without`` (before or after the argument), binary operators
with ``on``/``ignoring``/``group_left``/``group_right``, and it raises ``PromQLError`` on
anything else (an unknown function, a selector without a metric name, ``label_replace``, which
invents labels), so a query it cannot read fails the tests instead of passing unchecked.
Syntax proper is promtool's job; this is about names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

AGGREGATIONS = frozenset(
    "sum avg min max count stddev stdvar topk bottomk quantile count_values group".split()
)
FUNCTIONS = frozenset(
    """abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month
    day_of_week day_of_year days_in_month delta deriv exp floor histogram_quantile
    histogram_count histogram_sum histogram_fraction holt_winters hour idelta increase irate
    ln log2 log10 minute month predict_linear rate resets round scalar sgn sort sort_desc sqrt
    time timestamp vector year avg_over_time min_over_time max_over_time sum_over_time
    count_over_time quantile_over_time stddev_over_time stdvar_over_time last_over_time
    present_over_time""".split()
)
# Functions that invent or rewrite labels: our checks could not follow them.
UNSUPPORTED = frozenset({"label_replace", "label_join"})
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = GROUPING | {"bool", "and", "or", "unless", "offset", "atan2"}
LITERALS = frozenset({"inf", "nan"})
GRAFANA_INTERVALS = re.compile(r"\$\{?__(rate_interval|interval|range)(_ms|_s)?\}?")

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    |(?P<range>\[[^\]]*\])
    |(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
    |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<punct>[(){},])
    |(?P<op>=~|!~|!=|==|>=|<=|[=<>+\-*/%^@])
    """,
    re.VERBOSE,
)


class PromQLError(ValueError):
    """An expression this reader does not understand."""


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[str, ...]  # label names inside {...}
    function: str | None  # innermost function or aggregation around it
    offset: bool  # followed by `offset <duration>`


@dataclass(frozen=True)
class Grouping:
    keyword: str  # by, without, on, ignoring, group_left, group_right
    labels: tuple[str, ...]
    scope: tuple[str, ...]  # names of the selectors the clause applies to
    outer: bool  # the clause of the outermost aggregation


@dataclass(frozen=True)
class Query:
    expr: str
    selectors: tuple[Selector, ...]
    groupings: tuple[Grouping, ...]
    top_function: str | None  # the function the whole expression is a call of, if any

    @property
    def metrics(self) -> set[str]:
        return {s.name for s in self.selectors}


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's interval variables by a duration so the text is plain PromQL."""
    return GRAFANA_INTERVALS.sub("5m", expr)


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise PromQLError(f"cannot read {expr[pos : pos + 20]!r} in {expr!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


def _matching(tokens: list[tuple[str, str]]) -> dict[int, int]:
    pairs = {"(": ")", "{": "}"}
    stack: list[int] = []
    match: dict[int, int] = {}
    for i, (_, text) in enumerate(tokens):
        if text in pairs:
            stack.append(i)
        elif text in (")", "}"):
            if not stack or pairs[tokens[stack[-1]][1]] != text:
                raise PromQLError(f"unbalanced {text!r}")
            match[stack.pop()] = i
    if stack:
        raise PromQLError("unclosed bracket")
    return match


def _label_list(tokens: list[tuple[str, str]], open_at: int, close_at: int) -> tuple[str, ...]:
    labels = []
    for kind, text in tokens[open_at + 1 : close_at]:
        if kind == "ident":
            labels.append(text)
        elif text != ",":
            raise PromQLError(f"unexpected {text!r} in a label list")
    return tuple(labels)


def parse(expr: str) -> Query:
    """Read ``expr`` (Grafana interval variables allowed)."""
    text = grafana_to_promql(expr)
    tokens = tokenize(text)
    match = _matching(tokens)
    n = len(tokens)
    found: list[tuple[int, Selector]] = []
    clauses: list[tuple[str, tuple[str, ...], tuple[int, int] | None]] = []
    calls: list[str | None] = []  # one entry per open "(": the call it belongs to
    skip_to = -1
    agg_args: dict[int, str] = {}  # "(" index -> aggregation, for `sum by (x) (...)`
    i = 0
    while i < n:
        kind, tok = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < n else ""
        if i <= skip_to:
            i += 1
            continue
        if tok == "(":
            prev = tokens[i - 1] if i else ("", "")
            if i in agg_args:
                calls.append(agg_args[i])
            elif prev[0] == "ident" and (prev[1] in FUNCTIONS or prev[1] in AGGREGATIONS):
                calls.append(prev[1])
            else:
                calls.append(None)
        elif tok == ")":
            calls.pop()
        elif tok == "{":
            raise PromQLError(f"a selector without a metric name in {expr!r}")
        elif kind == "ident" and tok in GROUPING:
            if nxt != "(":
                if tok in ("group_left", "group_right"):
                    clauses.append((tok, (), None))
                    i += 1
                    continue
                raise PromQLError(f"{tok} without a label list in {expr!r}")
            close = match[i + 1]
            labels = _label_list(tokens, i + 1, close)
            scope: tuple[int, int] | None = None
            if tok in ("by", "without"):
                before = tokens[i - 1] if i else ("", "")
                if before[0] == "ident" and before[1] in AGGREGATIONS:  # sum by (x) (...)
                    arg = close + 1
                    if arg >= n or tokens[arg][1] != "(":
                        raise PromQLError(f"{before[1]} by (...) without an argument")
                    agg_args[arg] = before[1]
                    scope = (arg, match[arg])
                elif before[1] == ")":  # sum (...) by (x)
                    opening = next(k for k, v in match.items() if v == i - 1)
                    if not (opening and tokens[opening - 1][1] in AGGREGATIONS):
                        raise PromQLError(f"{tok} (...) not after an aggregation in {expr!r}")
                    scope = (opening, i - 1)
                else:
                    raise PromQLError(f"{tok} (...) not after an aggregation in {expr!r}")
            clauses.append((tok, labels, scope))
            skip_to = close
        elif kind == "ident" and tok in KEYWORDS:
            pass
        elif kind == "ident" and nxt == "(":
            if tok in UNSUPPORTED:
                raise PromQLError(f"{tok}() is not supported by these checks")
            if tok not in FUNCTIONS and tok not in AGGREGATIONS:
                raise PromQLError(f"unknown function {tok}() in {expr!r}")
        elif kind == "ident" and tok in AGGREGATIONS and nxt in ("by", "without"):
            pass
        elif kind == "ident" and tok.lower() not in LITERALS:
            matchers: tuple[str, ...] = ()
            end = i
            if nxt == "{":
                close = match[i + 1]
                inner = tokens[i + 2 : close]
                names = []
                for k, (ikind, itext) in enumerate(inner):
                    if ikind == "ident" and k + 1 < len(inner) and inner[k + 1][0] == "op":
                        names.append(itext)
                matchers = tuple(names)
                end = close
            if end + 1 < n and tokens[end + 1][0] == "range":
                end += 1
            has_offset = end + 1 < n and tokens[end + 1][1] == "offset"
            function = next((c for c in reversed(calls) if c is not None), None)
            found.append((i, Selector(tok, matchers, function, has_offset)))
            skip_to = end
        i += 1

    def names_in(span: tuple[int, int] | None) -> tuple[str, ...]:
        if span is None:
            return tuple(s.name for _, s in found)
        return tuple(s.name for at, s in found if span[0] < at < span[1])

    widest = max((s[1] - s[0] for _, _, s in clauses if s is not None), default=-1)
    groupings = tuple(
        Grouping(
            keyword,
            labels,
            names_in(span),
            span is not None and span[1] - span[0] == widest,
        )
        for keyword, labels, span in clauses
    )
    top = None
    if n >= 2 and tokens[0][0] == "ident" and tokens[1][1] == "(" and match[1] == n - 1:
        top = tokens[0][1]
    return Query(text, tuple(s for _, s in found), groupings, top)


def output_labels(query: Query, labels_of: dict[str, frozenset[str]]) -> frozenset[str]:
    """The labels of what a recording rule's expression returns (rules only use ``by``)."""
    if any(g.keyword == "without" for g in query.groupings):
        raise PromQLError("recording rules here aggregate with by (...), not without")
    outer = [g for g in query.groupings if g.keyword == "by" and g.outer]
    if outer:
        labels = frozenset(outer[0].labels)
    else:
        sets = [labels_of[s.name] for s in query.selectors]
        labels = frozenset.intersection(*sets) if sets else frozenset()
    if query.top_function == "histogram_quantile":
        labels -= {"le"}
    return labels
