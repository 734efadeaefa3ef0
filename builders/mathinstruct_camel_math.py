"""Camel-Math: its chain-of-thought rows in MathInstruct (a base-setting source of the paper)."""

from openmathmix.builders.mathinstruct import cot_subset

SOURCE = cot_subset("mathinstruct_camel_math", "data/CoT/math50k_camel.json", "Camel-Math", 48_000, "cc-by-nc-4.0",
                    homepage="https://github.com/camel-ai/camel")
