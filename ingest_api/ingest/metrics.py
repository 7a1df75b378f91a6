"""What a metric name means: a score or a spread figure, and whether it is a proportion."""

from __future__ import annotations

import functools
import math
import re

# Spread / uncertainty figures written next to scores: stored, never ranked or plotted as a score.
_NON_SCORE = re.compile(r"(bootstrap_std|\bstd\b|_std\b|stderr|\bstdev\b|\bsem\b|variance|\bci_(lower|upper)\b)",
                        re.IGNORECASE)
# Scores that are a share of examples (so a Wilson interval from n applies).
_PROPORTION = re.compile(r"(accuracy|\bacc\b|pass@|exact_match|\bem\b|correct|win_rate|solve_rate|success)",
                         re.IGNORECASE)


# Scores whose name says they are a share or ratio, so lie in [0, 1] (README, "Validation rules").
# Names that say percent or count (accuracy_pct, n_correct, total_correct) are not.
_UNIT = re.compile(r"(accuracy|(?<![a-z])acc(?![a-z])|pass@|exact_match|(?<![a-z])em(?![a-z])|(?<![a-z])f1(?!\d)"
                   r"|precision|recall|correct|win_rate|solve_rate|success)", re.IGNORECASE)
_NOT_UNIT = re.compile(r"(percent|pct|%|count|(?<![a-z])num(?![a-z])|(?<![a-z])n_|total|tokens|(?<![a-z])sum(?![a-z])"
                       r"|length|latency|time)", re.IGNORECASE)


def is_unit_interval_metric(name: str) -> bool:
    """True when the name says the value is a proportion: it must lie in [0, 1]."""
    return is_score_metric(name) and bool(_UNIT.search(name)) and not _NOT_UNIT.search(name)


def is_score_metric(name: str) -> bool:
    return not _NON_SCORE.search(name)


def is_proportion_metric(name: str, value: float | None) -> bool:
    if value is None or not _proportion_name(name):
        return False
    return 0.0 <= value <= 1.0


@functools.lru_cache(maxsize=4096)
def _proportion_name(name: str) -> bool:
    # Memoised: a read of hundreds of scores asks this of a handful of distinct names.
    return is_score_metric(name) and bool(_PROPORTION.search(name))


def split_value(value: float | None) -> tuple[float | None, str | None]:
    """(stored value, note): nan/inf are kept as "no value" with a note saying which."""
    if value is None:
        return None, None
    if math.isnan(value):
        return None, "nan"
    if math.isinf(value):
        return None, "inf" if value > 0 else "-inf"
    return float(value), None


def default_primary(metric_names: list[str]) -> str:
    """First score metric in the grader's order (first key, unless it is a spread figure)."""
    for name in metric_names:
        if is_score_metric(name):
            return name
    return metric_names[0]
