"""Exact and near-duplicate detection over a whole pool (pure functions on numpy arrays).

Keep rule (both kinds): rows are ranked by :func:`keep_order` (source priority, then id in natural order); in every
group of duplicates the row of smallest rank is kept and every other row is dropped as a duplicate *of that row*.

Exact duplicates share the 64-bit key of their normalised question and answer (:func:`row_keys`).

Near duplicates use MinHash LSH:

* each row is the set of its word ``shingle``-grams (question and answer windows; a text shorter than a shingle is
  one shingle of its own);
* rensa's R-MinHash (:func:`minhash_signatures`, Rust) gives ``num_perm`` 32-bit minimums per row; their low 16 bits
  are kept (256 bytes a row at 128 permutations; two different minimums agree in them with probability 2^-16);
* LSH: the signature is cut into ``bands`` bands of ``rows_per_band`` values. Rows whose values agree on a whole band
  land in one bucket. In each bucket, every member is paired with the bucket's first row in keep order;
* a pair is confirmed when the share of equal signature values (the Jaccard estimate) is at least ``threshold``;
* confirmed pairs are joined into connected components; each component keeps its first row in keep order, the others
  are near duplicates of it (so a chain A~B~C drops B and C as duplicates of A even if A and C differ more).

The probability that a pair of Jaccard similarity J becomes a candidate is ``1 - (1 - J^r)^b``
(:func:`candidate_probability`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets.utils.tqdm import tqdm as hf_tqdm

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


def _first_in_groups(keys: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """For each row, the row of smallest rank with the same key (itself when it is the first)."""
    order = np.lexsort((rank, keys))
    sorted_keys = keys[order]
    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = sorted_keys[1:] != sorted_keys[:-1]
    head = order[np.flatnonzero(new_group)][np.cumsum(new_group) - 1]
    first = np.empty(len(order), dtype=np.int64)
    first[order] = head
    return first


def exact_duplicates(keys: np.ndarray, rank: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """For each row, the index of the kept row it duplicates, or -1. Rows with ``eligible`` False take no part."""
    dup_of = np.full(len(keys), _NONE, dtype=np.int64)
    idx = np.flatnonzero(eligible)
    if not len(idx):
        return dup_of
    first = idx[_first_in_groups(keys[idx], rank[idx])]
    dropped = first != idx
    dup_of[idx[dropped]] = first[dropped]
    return dup_of


def minhash_signatures(shingles: np.ndarray, offsets: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """rensa R-MinHash signatures of the shingle sets ``shingles[offsets[i]:offsets[i + 1]]``, low 16 bits kept:
    an array (rows, num_perm) of uint16. A row without shingles gets all-ones values (callers exclude it)."""
    from rensa import RMinHash

    if len(offsets) < 2:
        return np.zeros((0, num_perm), dtype=_SIG_DTYPE)
    matrix = RMinHash.digest_matrix_from_flat_token_hashes(
        np.ascontiguousarray(shingles, dtype=np.uint64), np.ascontiguousarray(offsets, dtype=np.uint64),
        num_perm, seed)
    values = np.array(matrix.to_rows(), dtype=np.uint32)
    return (values & 0xFFFF).astype(_SIG_DTYPE)


def candidate_probability(similarity: float | np.ndarray, bands: int, rows_per_band: int) -> float | np.ndarray:
    """Probability that two rows of Jaccard similarity J share at least one LSH band: 1 - (1 - J^r)^b."""
    return 1.0 - (1.0 - np.asarray(similarity, dtype=np.float64) ** rows_per_band) ** bands


def _components(n: int, a: np.ndarray, b: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """For each of n nodes, the node of smallest rank in its connected component of the edges (a, b)."""
    # work on ranks, so "smallest label" is "first in keep order"
    label = np.arange(n, dtype=np.int64)
    ra, rb = rank[a], rank[b]
    node_of_rank = np.empty(n, dtype=np.int64)
    node_of_rank[rank] = np.arange(n, dtype=np.int64)
    while len(ra):
        la, lb = label[ra], label[rb]
        low = np.minimum(la, lb)
        moved = la != lb
        if not moved.any():
            break
        np.minimum.at(label, la[moved], low[moved])
        np.minimum.at(label, lb[moved], low[moved])
        while True:  # pointer jumping until every label is a root
            nxt = label[label]
            if np.array_equal(nxt, label):
                break
            label = nxt
    head_rank = label[rank]
    return node_of_rank[head_rank]


def lsh_candidates(signatures: np.ndarray, rank: np.ndarray, *, bands: int, rows_per_band: int,
                   progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (a, b), a ranked before b: in every band, each member of a bucket of two or more rows is
    paired with the bucket's first row in keep order. A pair found in several bands is listed once."""
    n = len(signatures)
    a_parts, b_parts = [], []
    for band in hf_tqdm(range(bands), desc="hygiene: LSH bands", unit=" bands", disable=not progress):
        keys = _band_keys(signatures[:, band * rows_per_band:(band + 1) * rows_per_band])
        first = _first_in_groups(keys, rank)
        pair = first != np.arange(n)
        a_parts.append(first[pair])
        b_parts.append(np.flatnonzero(pair))
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    if len(a):
        ab = np.unique(a * n + b)
        a, b = ab // n, ab % n
    return a, b


def near_duplicates(signatures: np.ndarray, rank: np.ndarray, eligible: np.ndarray, *, bands: int,
                    rows_per_band: int, threshold: float, progress: bool = False) -> tuple[np.ndarray, dict[str, int]]:
    """For each row, the index of the kept row whose near-duplicate component it belongs to, or -1; and counters
    (candidate pairs, confirmed pairs). See the module docstring for the scheme."""
    n, num_perm = signatures.shape
    if bands * rows_per_band > num_perm:
        raise ValueError(f"bands x rows_per_band = {bands * rows_per_band} exceeds num_perm = {num_perm}")
    dup_of = np.full(n, _NONE, dtype=np.int64)
    idx = np.flatnonzero(eligible)
    stats = {"candidate_pairs": 0, "confirmed_pairs": 0}
    if len(idx) < 2:
        return dup_of, stats
    sig = signatures[idx]
    sub_rank = np.empty(len(idx), dtype=np.int64)  # ranks 0..len(idx)-1 in the same order
    sub_rank[np.argsort(rank[idx], kind="stable")] = np.arange(len(idx))
    a, b = lsh_candidates(sig, sub_rank, bands=bands, rows_per_band=rows_per_band, progress=progress)
    stats["candidate_pairs"] = int(len(a))
    agree = np.zeros(len(a), dtype=np.int64)
    for start in range(0, len(a), 1 << 16):
        sl = slice(start, start + (1 << 16))
        agree[sl] = (sig[a[sl]] == sig[b[sl]]).sum(axis=1)
    ok = agree >= threshold * num_perm
    a, b = a[ok], b[ok]
    stats["confirmed_pairs"] = int(len(a))
    head = _components(len(idx), a, b, sub_rank)
    dropped = head != np.arange(len(idx))
    dup_of[idx[dropped]] = idx[head[dropped]]
    return dup_of, stats


def _band_keys(cols: np.ndarray) -> np.ndarray:
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
