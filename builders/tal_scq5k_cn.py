"""TAL-SCQ5K-CN (math-eval, 2023): Chinese single-choice competition math, train part."""

from dataclasses import replace

from openmathmix.builders.tal_scq5k_en import SOURCE as EN

SOURCE = replace(EN, name="tal_scq5k_cn", title="TAL-SCQ5K-CN", data_dir="TAL-SCQ5K-CN",
                 notes=EN.notes + " Text stays in Chinese; the final sentence is English.")
