"""GSM8K: its chain-of-thought rows in MathInstruct (a base-setting source of the paper)."""

from openmathmix.builders.mathinstruct import cot_subset

SOURCE = cot_subset("mathinstruct_gsm8k", "data/CoT/gsm_train.json", "GSM8K", 7_400, "mit",
                    homepage="https://github.com/openai/grade-school-math")
