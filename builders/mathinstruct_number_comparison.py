"""Number-Comparison: its chain-of-thought rows in MathInstruct (a base-setting source of the paper)."""

from openmathmix.builders.mathinstruct import cot_subset

SOURCE = cot_subset("mathinstruct_number_comparison", "data/CoT/number_comparison.json", "Number-Comparison", 300,
                    "mit", homepage="https://tiger-ai-lab.github.io/MAmmoTH/")
