"""Pearson correlation between a trained scorer's scores and the real one-shot quality scores (paper Section 5.3).

This file is an `evaluate` metric script shipped inside the package, so it loads offline from its own path:

    import evaluate
    from openmathmix.stages.scorer import PEARSON_QS_PATH   # the absolute path of this file
    metric = evaluate.load(PEARSON_QS_PATH)
    metric.compute(predictions=scorer_scores, references=real_qs)   # {"pearsonr": r, "p_value": p, "n": n}

`evaluate.load` with a local ``.py`` path copies the script into its modules cache and imports it; it never asks the
Hub. The script must therefore stay self-contained: absolute imports only, one per line (evaluate's import scanner
reads ``import a, b`` as a package named ``"a,"``).

The coefficient is computed in float64 on mean-centred values (numerically the same as ``scipy.stats.pearsonr``).
The two-sided p-value of the t statistic with ``n - 2`` degrees of freedom needs scipy; without it ``p_value`` is
None. Fewer than two pairs, or a constant input, give ``pearsonr = nan`` (the coefficient is undefined there).
"""

from __future__ import annotations

import math

import datasets
import evaluate

from openmathmix.metrics.correlation import pearson  # the one formula (this file is loaded by path)

_DESCRIPTION = (
    "Pearson product-moment correlation between predicted quality scores (for example the expected 1-5 label of a "
    "trained quality scorer) and reference quality scores (the real one-shot QS in [0, 1]). Scale and offset of "
    "either side do not matter."
)

_INPUTS = """
Args:
    predictions (list of float): scorer outputs, one per row.
    references (list of float): real quality scores of the same rows, in the same order.
Returns:
    pearsonr (float): the correlation coefficient in [-1, 1], or nan when undefined.
    p_value (float or None): two-sided p-value (needs scipy), None without scipy or when r is undefined.
    n (int): number of pairs.
"""

_CITATION = "QaDS / OpenMathMix, COLM 2024 (quality-scorer Pearson analysis, Section 5.3)."


def _p_value(r: float, n: int):
    if math.isnan(r) or n < 3:
        return None
    try:
        from scipy import stats
    except ImportError:
        return None
    if abs(r) == 1.0:
        return 0.0
    t = r * math.sqrt((n - 2) / (1.0 - r * r))
    return float(2.0 * stats.t.sf(abs(t), n - 2))


class PearsonQs(evaluate.Metric):
    """`evaluate` metric: Pearson r between scorer scores and real quality scores."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions, references):
        r = pearson(predictions, references)
        return {"pearsonr": r, "p_value": _p_value(r, len(predictions)), "n": len(predictions)}
