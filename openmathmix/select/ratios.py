"""Selection-ratio rules: how many rows of each source QaDS keeps.

* Base setting (Eq. 5, Appendix B). Sources with ``low < n_k < upp`` are the reference group, and M is their mean
  size. A source with ``n_i >= upp`` gets ratio ``M / n_i``, so it is cut to M rows. Every other source gets ratio 1.
  Sources at or below ``low`` keep everything and do not count towards M. ``upp`` is the knob that decides which
  sources are cut.
* Large setting (Section 4). ``r_i = mean QS_i / QS_max``, with QS_max = 5 for the 1-5 scorer labels.

The functions are pure: plain numbers in, plain numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..errors import SelectionError

__all__ = ["QS_MAX", "eq5_ratios", "kept_count", "mean_quality_ratio", "mean_quality_ratios", "prefix_count"]

QS_MAX = 5.0  # upper bound of the scorer's quality labels (Section 4)


def eq5_ratios(sizes: Mapping[str, int], *, low: float, upp: float) -> dict[str, float]:
    """Eq. 5: the ratio for each source, given every source's size in the setting.

    ``sizes`` must hold *all* sources of the setting, including the ones kept whole, because they make up M.
    Raises ``SelectionError`` when ``low >= upp``, or when some source must be cut but no source lies strictly
    between ``low`` and ``upp`` (M would be undefined).
    """
    if not low < upp:
        raise SelectionError(f"Eq. 5 needs low < upp, got low={low}, upp={upp}")
    for name, n in sizes.items():
        if n < 0:
            raise SelectionError(f"source {name!r} has a negative size {n}")
    reference = [n for n in sizes.values() if low < n < upp]
    cut = [name for name, n in sizes.items() if n >= upp]
    if cut and not reference:
        raise SelectionError(
            f"Eq. 5: sources {cut} are >= upp={upp}, but no source lies strictly between low={low} and upp; "
            "the mean size M is undefined. Raise upp or lower low"
        )
    mean_size = sum(reference) / len(reference) if reference else 0.0
    return {name: (mean_size / n if n >= upp else 1.0) for name, n in sizes.items()}


def mean_quality_ratio(mean_quality: float, qs_max: float = QS_MAX) -> float:
    """``r_i = mean QS_i / QS_max`` (Section 4, large setting). The mean must lie in ``[0, qs_max]``."""
    if qs_max <= 0 or not math.isfinite(qs_max):
        raise SelectionError(f"qs_max must be a positive finite number, got {qs_max}")
    if not math.isfinite(mean_quality) or not 0 <= mean_quality <= qs_max:
        raise SelectionError(
            f"mean quality score {mean_quality} is outside [0, {qs_max}]; check the quality_score column "
            "(the scorer's labels range from 1 to 5)"
        )
    return float(mean_quality) / float(qs_max)


def mean_quality_ratios(mean_quality: Mapping[str, float], qs_max: float = QS_MAX) -> dict[str, float]:
    """:func:`mean_quality_ratio` for every source in ``mean_quality``."""
    out = {}
    for name, value in mean_quality.items():
        try:
            out[name] = mean_quality_ratio(value, qs_max)
        except SelectionError as err:
            raise SelectionError(f"source {name!r}: {err}") from None
    return out


def kept_count(n: int, ratio: float) -> int:
    """Rows kept from ``n`` at ``ratio``: ``ratio * n`` rounded half up, within ``[0, n]``.

    The product is rounded to 9 significant decimals first, so 0.7 * 10 gives 7, not 7.000000000000001.
    """
    if not math.isfinite(ratio) or ratio < 0:
        raise SelectionError(f"ratio must be a finite number >= 0, got {ratio}")
    exact = round(ratio * n, 9)
    return max(0, min(n, math.floor(exact + 0.5)))


def prefix_count(kept: int, ratio: float) -> int:
    """Rows of a scope in the nested subset at ``ratio``: ``ceil(ratio * kept)``, within ``[0, kept]``.

    Rounded to 9 decimals before the ceiling for the same reason as :func:`kept_count`. The count never decreases
    as ``ratio`` grows, so subsets built from prefixes of one order are nested.
    """
    if not math.isfinite(ratio) or not 0 <= ratio <= 1:
        raise SelectionError(f"subset ratio must lie in [0, 1], got {ratio}")
    return max(0, min(kept, math.ceil(round(ratio * kept, 9))))
