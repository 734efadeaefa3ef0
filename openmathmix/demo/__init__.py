"""Demo data with rows of known kinds, and the settings under which the demo shows the method.

    files = write_demo_data("demo-data")          # {source: [files]}, plus the test-set pool of the demo profile
    ...build with data_files=files (the demo profile does this itself: settings.DemoSettings.generate)...
    mean_by_kind(scored, "qs", task="reasoning")  # {kind: (mean QS, rows)}
"""

from .generate import KINDS, kind_of, write_demo_data
from .measure import mean_by_kind, ridge_cv_pearson

__all__ = ["KINDS", "kind_of", "mean_by_kind", "ridge_cv_pearson", "write_demo_data"]
