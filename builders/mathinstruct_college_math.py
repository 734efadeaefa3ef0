"""College-Math: its chain-of-thought rows in MathInstruct (a base-setting source of the paper)."""

from openmathmix.builders.mathinstruct import cot_subset

SOURCE = cot_subset("mathinstruct_college_math", "data/CoT/college_math.json", "College-Math", 1_800, "mit",
                    homepage="https://tiger-ai-lab.github.io/MAmmoTH/")
