"""What must never leave the machine in a release: Hugging Face tokens."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import PublishError
from .manifest import release_files

__all__ = ["check_no_secrets"]

TOKEN_PATTERN = re.compile(rb"hf_[A-Za-z0-9]{20,}")
BINARY_SUFFIXES = (".parquet", ".png", ".arrow")


def _current_token() -> str | None:
    from huggingface_hub import get_token

    try:
        return get_token()
    except (OSError, ValueError):  # an unreadable token file: nothing to compare against
        return None


def check_no_secrets(root: str | os.PathLike, extra: Iterable[str] = ()) -> None:
    """Raise `PublishError` if a text file under `root` holds an `hf_...` token or the current token's value.

    Binary data files (parquet, png, arrow) are not scanned. The error names the file, never the secret.
    """
    secrets = [s.encode() for s in [_current_token(), *extra] if s and len(s) >= 8]
    root = Path(root)
    paths = [root] if root.is_file() else release_files(root)
    for path in paths:
        if path.suffix.lower() in BINARY_SUFFIXES:
            continue
        data = path.read_bytes()
        if TOKEN_PATTERN.search(data) or any(s in data for s in secrets):
            raise PublishError(
                f"{path} contains what looks like a Hugging Face access token; refusing to write or upload it. "
                "Remove the token from the settings or texts that ended up in this file"
            )
