"""Demo data with rows of known kinds, and the settings under which the demo shows the method.

    files = write_demo_data("demo-data")          # {source: [files]}, plus the test-set pool DEMO_SETTINGS.test_source
    ...build with data_files=files and DEMO_SETTINGS...
    mean_by_kind(scored, "qs", task="reasoning")  # {kind: (mean QS, rows)}
"""

from .generate import KINDS, kind_of, write_demo_data
from .measure import mean_by_kind, ridge_cv_pearson
from .settings import DEMO_SETTINGS, DemoSettings

__all__ = ["DEMO_SETTINGS", "KINDS", "DemoSettings", "kind_of", "mean_by_kind", "ridge_cv_pearson", "write_demo_data"]
