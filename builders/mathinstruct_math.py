"""MATH: its chain-of-thought rows in MathInstruct (a base-setting source of the paper)."""

from openmathmix.builders.mathinstruct import cot_subset

from openmathmix.formats import Columns

SOURCE = cot_subset("mathinstruct_math", "data/CoT/MATH_train.json", "MATH", 7_400, "mit",
                    homepage="https://github.com/hendrycks/math",
                    release=(Columns("problem", "solution"),))
