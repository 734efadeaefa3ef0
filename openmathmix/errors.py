"""One error hierarchy for the whole package: every failure a user can cause is an OpenMathMixError."""

from __future__ import annotations


class OpenMathMixError(Exception):
    """Root of every error this package raises on purpose."""


class SourceError(OpenMathMixError):
    """A source could not be resolved or loaded."""


class UnknownSourceError(SourceError, KeyError):
    """A source name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DuplicateSourceError(SourceError):
    """Two builder files declare the same source name."""


class DataFileError(SourceError, ValueError):
    """A data file is structurally broken (invalid JSON, missing column, wrong type)."""


class DataFileNotFoundError(SourceError, FileNotFoundError):
    """A data file, folder or glob given as input does not exist."""


class SchemaError(OpenMathMixError, ValueError):
    """A dataset does not have the columns or types a step needs."""


class MissingColumnsError(SchemaError):
    """A stage needs columns that the dataset does not have."""


class ConfigError(OpenMathMixError, ValueError):
    """A setting or argument with a value no step can run with."""


class InputNotFoundError(OpenMathMixError, FileNotFoundError):
    """An input folder or file that does not exist or is not what the command reads."""


class CacheError(OpenMathMixError):
    """A cache folder that cannot be used (locked by another process, unwritable)."""


class PresetError(OpenMathMixError, ValueError):
    """A mixture preset is malformed or names unknown keys or sources."""


class SelectionError(OpenMathMixError, ValueError):
    """Bad input to a selection algorithm (NaN embeddings, wrong shapes, impossible budgets)."""


class ModelError(OpenMathMixError):
    """A model could not be loaded or run."""


class OutputError(OpenMathMixError, ValueError):
    """An output folder that must not be written or replaced (an input, the home folder, a folder not ours...)."""


class PublishError(OpenMathMixError):
    """A release could not be written or pushed."""


class MissingDependencyError(OpenMathMixError, ImportError):
    """An optional dependency is not installed."""
