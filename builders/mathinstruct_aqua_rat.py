"""AQuA-RAT: its chain-of-thought rows in MathInstruct (a base-setting source of the paper)."""

from openmathmix.builders.mathinstruct import cot_subset

from openmathmix.formats import RecordMap, aqua_exchange

SOURCE = cot_subset("mathinstruct_aqua_rat", "data/CoT/aqua_rat.json", "AQuA-RAT", 69_000, "apache-2.0",
                    homepage="https://github.com/google-deepmind/AQuA",
                    release=(RecordMap(aqua_exchange, ("question", "options", "rationale", "correct")),))
