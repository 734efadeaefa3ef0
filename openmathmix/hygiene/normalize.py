"""Text normalisation and word hashing shared by decontamination and duplicate detection (pure functions).

The rule (``NORMALIZATION_VERSION`` 1), applied to each text in this order:

1. GSM8K calculator annotations ``<<48/2=24>>`` are removed: they repeat the arithmetic the sentence states, and
   re-exports of GSM8K keep or drop them (FLAN's CoT copy has none), so two copies of a problem would differ there.
2. Unicode NFKC (full-width digits, ligatures and compatibility spaces become their plain forms), then lower case,
   character by character (Unicode's simple mapping: ``İ`` -> ``i``, ``Σ`` -> ``σ`` even at the end of a word).
3. Every character that is not a letter or a digit (Unicode categories L and N) becomes a space: punctuation,
   symbols, LaTeX markup (``\\frac{1}{2}`` -> ``frac 1 2``), underscores, line breaks.
4. Each CJK ideograph is a word by itself (Chinese has no spaces between words).
5. Words are the maximal runs of non-spaces; the normalised text is the words joined by single spaces.

So ``"Natalia sold 48/2 = <<48/2=24>>24 clips."`` and ``"natalia SOLD 48 / 2 = 24 clips"`` normalise to the same
``"natalia sold 48 2 24 clips"``. :func:`normalize_text` states the rule for one string in plain Python (the
reference); :func:`tokenize` applies it to an Arrow array at once (pyarrow kernels on the rare non-ASCII rows, a
byte table in numpy on the rest) and returns one 64-bit hash per word (xxh3-64 of its UTF-8 bytes, so hashes are
the same in every process and on every machine).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex
import xxhash

NORMALIZATION_VERSION = 1
CALCULATOR = r"<<[^<>\n]*>>"  # GSM8K calculator annotation
_NOT_WORD = r"[^\p{L}\p{N}]+"  # RE2 syntax (pyarrow)
_HAN = r"(\p{Han})"
_SPACE = 0x20

# Byte table for ASCII text: letters lower-cased, digits kept, every other ASCII byte a space. Bytes >= 0x80 (parts
# of multi-byte UTF-8 characters, already normalised by the Unicode path) map to themselves.
_BYTE_TABLE = np.full(256, _SPACE, dtype=np.uint8)
_BYTE_TABLE[0x80:] = np.arange(0x80, 0x100, dtype=np.uint8)
for _c in b"abcdefghijklmnopqrstuvwxyz0123456789":
    _BYTE_TABLE[_c] = _c
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _BYTE_TABLE[_c] = _c + 32


def normalize_text(text: str) -> str:
    """The normalisation rule of this module for one string, written plainly (the reference :func:`tokenize` matches)."""
    text = unicodedata.normalize("NFKC", regex.sub(CALCULATOR, " ", text))
    chars = []
    for ch in (c.lower()[0] for c in text):  # the first code point of the full lower case is the simple mapping
        if unicodedata.category(ch)[0] not in "LN":
            chars.append(" ")
        elif regex.match(_HAN, ch):
            chars.append(f" {ch} ")
        else:
            chars.append(ch)
    return " ".join("".join(chars).split())


@dataclass(frozen=True)
class Tokens:
    """The words of ``len(offsets) - 1`` texts: text i has the word hashes ``hashes[offsets[i]:offsets[i + 1]]``."""

    hashes: np.ndarray  # uint64, one per word, in text order
    offsets: np.ndarray  # int64, len = texts + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def _as_string_array(texts: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts), type=pa.string())
    if pa.types.is_large_string(texts.type) or pa.types.is_string_view(texts.type):
        texts = texts.cast(pa.string())
    return pc.fill_null(texts, "")


def _unicode_path(texts: pa.Array) -> pa.Array:
    """Steps 2-4 with pyarrow's Unicode kernels; used for the rows that are not pure ASCII."""
    texts = pc.utf8_normalize(texts, form="NFKC")
    texts = pc.utf8_lower(texts)
    texts = pc.replace_substring_regex(texts, _NOT_WORD, " ")
    return pc.replace_substring_regex(texts, _HAN, r" \1 ")


def normalized_bytes(texts: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-4 over a whole array: (UTF-8 bytes of all texts, uint8; offsets, int64) with words separated by
    spaces (not yet collapsed). Nulls count as empty texts."""
    arr = pc.replace_substring_regex(_as_string_array(texts), CALCULATOR, " ")
    ascii_rows = pc.string_is_ascii(arr)
    if not pc.all(ascii_rows).as_py():
        other = pc.invert(ascii_rows)
        arr = pc.replace_with_mask(arr, other, _unicode_path(pc.filter(arr, other)))
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=arr.offset + len(arr) + 1)[arr.offset:]
    offsets = offsets.astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return _BYTE_TABLE[data[offsets[0]:offsets[-1]]], offsets - offsets[0]


def tokenize(texts: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> Tokens:
    """Normalise ``texts`` (see the module docstring) and hash their words (xxh3-64 of each word's UTF-8 bytes)."""
    data, offsets = normalized_bytes(texts)
    n_texts = len(offsets) - 1
    if not len(data):
        return Tokens(np.zeros(0, np.uint64), np.zeros(n_texts + 1, np.int64))
    word = data != _SPACE
    text_start = np.zeros(len(data) + 1, dtype=bool)
    text_start[offsets[:-1]] = True
    gap_before = np.ones(len(data), dtype=bool)  # position p follows a space or opens a text
    gap_before[1:] = ~word[:-1]
    gap_before |= text_start[:-1]
    gap_after = np.ones(len(data), dtype=bool)  # position p precedes a space or the start of a text
    gap_after[:-1] = ~word[1:]
    gap_after |= text_start[1:]
    starts = np.flatnonzero(word & gap_before)
    ends = np.flatnonzero(word & gap_after)
    # drop the spaces: the words become contiguous strings
    packed = data[word]
    word_offsets = np.zeros(len(starts) + 1, dtype=np.int32)
    np.cumsum(ends - starts + 1, out=word_offsets[1:])
    words = pa.StringArray.from_buffers(len(starts), pa.py_buffer(word_offsets), pa.py_buffer(packed))
    encoded = pc.dictionary_encode(words)
    vocab = encoded.dictionary.to_pylist()
    vocab_hashes = np.fromiter((xxhash.xxh3_64_intdigest(w.encode()) for w in vocab), dtype=np.uint64,
                               count=len(vocab))
    hashes = vocab_hashes[encoded.indices.to_numpy()]
    text_offsets = np.searchsorted(starts, offsets, side="left").astype(np.int64)
    return Tokens(hashes, text_offsets)


def normalize(texts: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> pa.Array:
    """The normalised texts as strings (words joined by single spaces), for reports and tests."""
    data, offsets = normalized_bytes(texts)
    arr = pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))
    return pc.utf8_trim(pc.replace_substring_regex(arr, " {2,}", " "), " ")
