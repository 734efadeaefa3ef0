"""openmathmix: build, score and select math-reasoning SFT mixtures (QaDS / OpenMathMix) with `datasets`."""

__version__ = "0.1.0"
