"""TheoremQA: its chain-of-thought rows in MathInstruct (a base-setting source of the paper)."""

from openmathmix.builders.mathinstruct import cot_subset

SOURCE = cot_subset("mathinstruct_theoremqa", "data/CoT/TheoremQA.json", "TheoremQA", 577, "mit",
                    homepage="https://github.com/TIGER-AI-Lab/TheoremQA")
