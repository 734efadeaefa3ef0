"""Releases: a selected mixture -> a folder laid out like a Hub dataset repository -> the Hub.

    writer.py    `write_release`: parquet configs, card, licence file, figures, manifest, in one safe swap
    columns.py   the columns of each config, the `messages` column, the pool's consistency check
    figures.py   the card's PNG figures
    card.py      the dataset card (Hub metadata + Jinja body)
    manifest.py  `manifest.json`, `validate_release`, `composition_table`
    scan.py      no tokens (parquet rows included) and no local paths in a release
    publish.py   `publish`: a release folder -> a Hub dataset repository, tagged
"""

from __future__ import annotations

from .card import CardFigure, CardSection
from .manifest import MANIFEST, README, composition_table, load_manifest, release_files, validate_release
from .scan import check_no_secrets
from .writer import write_release

__all__ = ["MANIFEST", "README", "CardFigure", "CardSection", "check_no_secrets", "composition_table", "load_manifest",
           "release_files", "validate_release", "write_release"]
