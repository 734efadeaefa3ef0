"""The demo's settings in one place (placeholder values; tuned by measurement)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoSettings:
    rows_per_source: int = 30
    test_source: str = "mathinstruct_math"
    test_rows: int = 40
    n1: int = 8
    n2: int = 8
    max_test_tokens: int = 160
    max_example_tokens: int = 160
    seed: int = 0


DEMO_SETTINGS = DemoSettings()
