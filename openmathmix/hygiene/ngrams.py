"""Word n-gram hashes and whole-text hashes over :class:`~openmathmix.hygiene.normalize.Tokens`, vectorised in numpy.

A window of L words with word hashes h_i .. h_{i+L-1} hashes to ``mix64(sum_k h_{i+k} * P^(L-1-k) mod 2^64)``: the
same words give the same value wherever they stand, in a pool row or in a benchmark item, whatever L is. All
windows of every length come from one prefix sum ``S_k = sum_{j<k} h_j * P^-j`` (P is odd, so it is invertible
modulo 2^64): the window [i, i+L) is ``P^(i+L-1) * (S_{i+L} - S_i)``, a few passes over the words for any L.
``mix64`` (MurmurHash3's 64-bit finaliser) spreads the bits, so the top bits can index a bitmap.

:func:`text_hashes` gives each text one order-sensitive 64-bit key (a sum of mixed, position-salted word hashes),
used to find exact duplicates.
"""

from __future__ import annotations

import numpy as np

from .normalize import Tokens

_P = np.uint64(0x9E3779B97F4A7C17)  # odd multiplier (= 7 mod 8)
_P_INV = np.uint64(pow(int(_P), -1, 1 << 64))
_SALT = np.uint64(0xD6E8FEB86659FD93)
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_powers_cache: dict[str, np.ndarray] = {"p": np.ones(1, np.uint64), "inv": np.ones(1, np.uint64)}


def mix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, a bijection that avalanches every input bit (uint64 in, new uint64 out)."""
    x = x ^ (x >> _S33)
    x *= _M1
    x ^= x >> _S33
    x *= _M2
    x ^= x >> _S33
    return x


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """P^j and P^-j (mod 2^64) for j < n; kept and grown by doubling, since every chunk needs them."""
    if len(_powers_cache["p"]) < n:
        size = max(n, 2 * len(_powers_cache["p"]))
        for key, base in (("p", _P), ("inv", _P_INV)):
            arr = np.full(size, base, dtype=np.uint64)
            arr[0] = 1
            _powers_cache[key] = np.cumprod(arr, dtype=np.uint64)
    return _powers_cache["p"][:n], _powers_cache["inv"][:n]


class Windows:
    """Hashes of word windows of one :class:`Tokens` (prefix sums computed once, then any window length)."""

    def __init__(self, tokens: Tokens):
        self.tokens = tokens
        n_words = len(tokens.hashes)
        self._p, inv = _powers(n_words + 1)
        self._s = np.zeros(n_words + 1, dtype=np.uint64)
        np.cumsum(tokens.hashes * inv[:-1], out=self._s[1:])
        self.text_of_word = np.repeat(np.arange(len(tokens), dtype=np.int64), tokens.lengths)

    def span(self, start: np.ndarray, stop: np.ndarray, *, mix: bool = True) -> np.ndarray:
        """Hash of the words [start, stop) (flat word positions; stop > start). ``mix=False`` skips the finaliser:
        the raw polynomial is already uniform over 64 bits (its last word enters with coefficient 1), which is all
        an equality lookup needs."""
        raw = self._p[stop - 1] * (self._s[stop] - self._s[start])
        return mix64(raw) if mix else raw

    def at_every_word(self, n: int, *, mix: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Hash of the n words starting at every word position, and whether that window stays inside its text."""
        n_words = len(self.tokens.hashes)
        if n_words < n:
            return np.zeros(0, np.uint64), np.zeros(0, bool)
        m = n_words - n + 1
        raw = self._p[n - 1:n_words] * (self._s[n:] - self._s[:m])
        ends = self.tokens.offsets[1:][self.text_of_word[:m]]
        return (mix64(raw) if mix else raw), ends - np.arange(m) >= n

    def text_end(self, positions: np.ndarray) -> np.ndarray:
        """Flat position just past the end of the text holding each word position."""
        return self.tokens.offsets[1:][self.text_of_word[positions]]

    def whole(self, texts: np.ndarray, *, mix: bool = True) -> np.ndarray:
        """Hash of the whole word sequence of each of ``texts`` (which must have at least one word)."""
        return self.span(self.tokens.offsets[texts], self.tokens.offsets[texts + 1], mix=mix)

    def grams(self, n: int, *, short: bool = False, min_words: int = 1, mix: bool = True,
              ) -> tuple[np.ndarray, np.ndarray]:
        """Hashes of all windows of ``n`` words inside each text, grouped by text in order, and their text index.

        ``short=True`` gives a text of ``min_words`` to ``n - 1`` words one hash, that of its whole word sequence.
        """
        if n < 1:
            raise ValueError(f"n-gram size must be >= 1, got {n}")
        hashes, valid = self.at_every_word(n, mix=mix)
        keep = np.flatnonzero(valid)
        hashes, text = hashes[keep], self.text_of_word[keep]
        lengths = self.tokens.lengths
        small = np.flatnonzero((lengths >= max(min_words, 1)) & (lengths < n)) if short else np.zeros(0, np.int64)
        if not len(small):
            return hashes, text
        count = np.maximum(lengths - n + 1, 0)
        count[small] = 1
        first = np.cumsum(count) - count  # position of each text's first gram in the output
        out = np.empty(int(count.sum()), dtype=np.uint64)
        out[first[text] + (keep - self.tokens.offsets[text])] = hashes
        out[first[small]] = self.whole(small, mix=mix)
        return out, np.repeat(np.arange(len(lengths), dtype=np.int64), count)


def text_hashes(tokens: Tokens) -> np.ndarray:
    """One order-sensitive 64-bit key per text (a text without words gets 0): equal word sequences, equal keys."""
    n_words = len(tokens.hashes)
    lengths = tokens.lengths
    if not n_words:
        return np.zeros(len(tokens), np.uint64)
    position = np.arange(n_words, dtype=np.int64) - np.repeat(tokens.offsets[:-1], lengths)
    salted = mix64(tokens.hashes ^ (position.astype(np.uint64) * _SALT))
    sums = np.add.reduceat(salted, np.minimum(tokens.offsets[:-1], n_words - 1))
    sums[lengths == 0] = 0
    return mix64(sums ^ (lengths.astype(np.uint64) * _P))
