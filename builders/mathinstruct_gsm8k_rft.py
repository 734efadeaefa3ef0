"""GSM8K-RFT: its chain-of-thought rows in MathInstruct (a base-setting source of the paper)."""

from openmathmix.builders.mathinstruct import cot_subset

SOURCE = cot_subset("mathinstruct_gsm8k_rft", "data/CoT/gsm_rft.json", "GSM8K-RFT", 16_000, "mit",
                    homepage="https://github.com/OFA-Sys/gsm8k-ScRel")
