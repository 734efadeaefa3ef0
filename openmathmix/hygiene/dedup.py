"""Exact and near-duplicate detection over a whole pool (pure functions on numpy arrays).

Keep rule (both kinds): rows are ranked by :func:`keep_order` (source priority, then id in natural order); in every
group of duplicates the row of smallest rank is kept and every other row is dropped as a duplicate *of that row*.

Exact duplicates share the 64-bit key of their normalised question and answer (:func:`row_keys`).

Near duplicates use MinHash LSH:

* each row is the set of its word ``shingle``-grams (the normalised question's words followed by the answer's; a row
  shorter than a shingle is one shingle of its own);
* rensa's R-MinHash (:func:`minhash_signatures`, Rust) gives ``num_perm`` 32-bit minimums per row; their low 16 bits
  are kept (256 bytes a row at 128 permutations; two different minimums agree in them with probability 2^-16);
* LSH: the signature is cut into ``bands`` bands of ``rows_per_band`` values. Rows whose values agree on a whole band
  land in one bucket. In each bucket, every member is paired with the bucket's first row in keep order;
* a pair is confirmed when the share of equal signature values (the Jaccard estimate) is at least ``threshold``
  (pairs whose rows are already joined by earlier bands are not checked again);
* confirmed pairs are joined into connected components; each component keeps its first row in keep order, the others
  are near duplicates of it (so a chain A~B~C drops B and C as duplicates of A even if A and C differ more).

The probability that a pair of Jaccard similarity J becomes a candidate is ``1 - (1 - J^r)^b``
(:func:`candidate_probability`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets.utils.tqdm import tqdm as hf_tqdm

from ..errors import MissingDependencyError
from .ngrams import mix64, text_hashes
from .normalize import Tokens

_SIG_DTYPE = np.uint16  # stored bits of each MinHash value
_NONE = -1


def keep_order(ids: Sequence[str] | pa.Array, sources: Sequence[str] | pa.Array, priority: Sequence[str]) -> np.ndarray:
    """Rank of every row in the keep order (0 = kept first): sources in ``priority`` order (a source missing from it
    goes last, by name), then ids in natural order (``src/file/10`` after ``src/file/9``: the text before the last
    ``/`` compared as text, then the part after it, numbers first and by value, other tails after them as text)."""
    ids = pa.array(ids, type=pa.string()) if not isinstance(ids, (pa.Array, pa.ChunkedArray)) else ids
    sources = pa.array(sources, type=pa.string()) if not isinstance(sources, (pa.Array, pa.ChunkedArray)) else sources
    position = {name: i for i, name in enumerate(priority)}
    names = sorted(pc.unique(sources).to_pylist(), key=lambda s: (position.get(s, len(position)), s))
    source_rank = pc.index_in(sources, value_set=pa.array(names, type=pa.string()))
    tail = pc.replace_substring_regex(ids, r"^.*/", "")
    head = pc.replace_substring_regex(ids, r"[^/]*$", "")
    numeric = pc.match_substring_regex(tail, r"^[0-9]{1,18}$")
    last = np.iinfo(np.int64).max  # a tail that is not a number sorts after the numbers, then as text
    number = pc.if_else(numeric, pc.cast(pc.if_else(numeric, tail, "0"), pa.int64()), pa.scalar(last, pa.int64()))
    table = pa.table({"s": source_rank, "h": head, "n": number, "t": tail})
    order = pc.sort_indices(table, sort_keys=[("s", "ascending"), ("h", "ascending"), ("n", "ascending"),
                                              ("t", "ascending")]).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank


def row_keys(texts: Tokens) -> np.ndarray:
    """64-bit key of each row's normalised (question, answer), from the texts q0, a0, q1, a1, ...: equal texts,
    equal keys."""
    keys = text_hashes(texts)
    return mix64(keys[0::2] * np.uint64(0x9E3779B97F4A7C15) + keys[1::2])


def exact_duplicates(keys: np.ndarray, rank: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """For each row, the index of the kept row it duplicates, or -1. Rows with ``eligible`` False take no part."""
    dup_of = np.full(len(keys), _NONE, dtype=np.int64)
    rows = np.flatnonzero(eligible)
    rows = rows[np.argsort(rank[rows], kind="stable")]
    first, member = bucket_pairs(keys[rows])
    dup_of[rows[member]] = rows[first]
    return dup_of


def minhash_signatures(shingles: np.ndarray, offsets: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """rensa R-MinHash signatures of the shingle sets ``shingles[offsets[i]:offsets[i + 1]]``, low 16 bits kept:
    an array (rows, num_perm) of uint16. A row without shingles gets all-ones values (callers exclude it)."""
    RMinHash = _rensa().RMinHash
    if len(offsets) < 2:
        return np.zeros((0, num_perm), dtype=_SIG_DTYPE)
    matrix = RMinHash.digest_matrix_from_flat_token_hashes(
        np.ascontiguousarray(shingles, dtype=np.uint64), np.ascontiguousarray(offsets, dtype=np.uint64),
        num_perm, seed)
    rows = matrix.to_rows()  # the only way out of rensa: lists of Python ints
    values = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.uint32, count=len(rows) * num_perm)
    return (values & 0xFFFF).astype(_SIG_DTYPE).reshape(len(rows), num_perm)


def _rensa():
    try:
        import rensa
    except ImportError as err:
        raise MissingDependencyError("near-duplicate detection needs the rensa package: pip install 'rensa>=0.5,<0.6' "
                                     "(or turn it off with near_dedup=False)") from err
    return rensa


def rensa_info() -> dict[str, str | int]:
    """The MinHash library's name, version and algorithm version, for the report."""
    from importlib.metadata import version

    return {"library": "rensa", "library_version": version("rensa"),
            "algorithm_version": int(_rensa().RMinHash.ALGORITHM_VERSION)}


def candidate_probability(similarity: float | np.ndarray, bands: int, rows_per_band: int) -> float | np.ndarray:
    """Probability that two rows of Jaccard similarity J share at least one LSH band: 1 - (1 - J^r)^b."""
    return 1.0 - (1.0 - np.asarray(similarity, dtype=np.float64) ** rows_per_band) ** bands


def _join(label: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Union of the edges (a, b) into ``label`` (every node's root, the smallest node of its component), in place:
    each root hooks onto the smaller root across an edge, then pointer jumping, until no edge joins two roots."""
    while len(a):
        la, lb = label[a], label[b]
        moved = la != lb
        if not moved.any():
            return
        a, b, low = a[moved], b[moved], np.minimum(la, lb)[moved]
        np.minimum.at(label, la[moved], low)
        np.minimum.at(label, lb[moved], low)
        while True:
            nxt = label[label]
            if np.array_equal(nxt, label):
                break
            label[:] = nxt


def near_duplicates(signatures: np.ndarray, rank: np.ndarray, eligible: np.ndarray, *, bands: int,
                    rows_per_band: int, threshold: float, progress: bool = False) -> tuple[np.ndarray, dict[str, int]]:
    """For each row, the index of the kept row whose near-duplicate component it belongs to, or -1; and counters
    (candidate pairs checked, pairs confirmed). See the module docstring for the scheme.

    Bands are taken one at a time: a bucket pair whose rows are already in one component is not checked again.
    """
    n, num_perm = signatures.shape
    if bands * rows_per_band > num_perm:
        raise ValueError(f"bands x rows_per_band = {bands * rows_per_band} exceeds num_perm = {num_perm}")
    dup_of = np.full(n, _NONE, dtype=np.int64)
    rows = np.flatnonzero(eligible)
    rows = rows[np.argsort(rank[rows], kind="stable")]  # keep order: position i in `rows` = i-th to keep
    stats = {"pairs_checked": 0, "pairs_confirmed": 0}
    if len(rows) < 2:
        return dup_of, stats
    label = np.arange(len(rows), dtype=np.int64)  # component root of each position (its first position)
    need = int(np.ceil(threshold * num_perm - 1e-9))
    for band in hf_tqdm(range(bands), desc="hygiene: LSH bands", unit=" bands", disable=not progress):
        a, b = bucket_pairs(band_keys(signatures[rows, band * rows_per_band:(band + 1) * rows_per_band]))
        fresh = label[a] != label[b]
        a, b = a[fresh], b[fresh]
        agree = np.zeros(len(a), dtype=np.int64)
        for start in range(0, len(a), 1 << 16):
            sl = slice(start, start + (1 << 16))
            agree[sl] = (signatures[rows[a[sl]]] == signatures[rows[b[sl]]]).sum(axis=1)
        ok = agree >= need
        stats["pairs_checked"] += len(a)
        stats["pairs_confirmed"] += int(ok.sum())
        _join(label, a[ok], b[ok])
    dropped = label != np.arange(len(rows))
    dup_of[rows[dropped]] = rows[label[dropped]]
    return dup_of, stats


def bucket_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (first, member) of positions with equal keys: every member of a group of two or more is paired with
    the group's smallest position (with positions in keep order: the row that is kept)."""
    by_key = np.argsort(keys)
    sorted_keys = keys[by_key]
    start = np.ones(len(keys), dtype=bool)
    start[1:] = sorted_keys[1:] != sorted_keys[:-1]
    if start.all():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(start)
    head = np.minimum.reduceat(by_key, starts)[np.cumsum(start) - 1]
    pair = by_key != head
    return head[pair], by_key[pair]


def band_keys(cols: np.ndarray) -> np.ndarray:
    """One 64-bit key per row for a band of signature values: packed exactly when they fit in 64 bits (4 values of
    16 bits), else combined with the MurmurHash3 finaliser."""
    width = 8 * cols.dtype.itemsize
    keys = np.zeros(len(cols), dtype=np.uint64)
    if width * cols.shape[1] <= 64:
        for j in range(cols.shape[1]):
            keys |= cols[:, j].astype(np.uint64) << np.uint64(width * j)
        return keys
    for j in range(cols.shape[1]):
        keys = mix64(keys * np.uint64(0x9E3779B97F4A7C15) ^ cols[:, j].astype(np.uint64))
    return keys
