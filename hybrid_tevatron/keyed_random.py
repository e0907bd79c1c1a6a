"""Keyed randomness without state: a generator per key (:func:`keyed_rng`), a stable 64-bit hash
(:func:`mix64`, splitmix64's finaliser), and a permutation computed on demand (:class:`KeyedPermutation`). The same
key gives the same values in every process and on every rank, which is what the batch plan
(:mod:`hybrid_tevatron.sampling`) is built on."""

from __future__ import annotations

import numpy as np

_MASK64 = (1 << 64) - 1


def keyed_rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def mix64(x: int) -> int:
    """splitmix64 finaliser on a Python int: a stable hash (Python's ``hash`` is salted per process)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


_U64 = {name: np.uint64(v) for name, v in
        dict(golden=0x9E3779B97F4A7C15, m1=0xBF58476D1CE4E5B9, m2=0x94D049BB133111EB, s1=30, s2=27, s3=31).items()}


def mix64_array(x: np.ndarray) -> np.ndarray:
    """:func:`mix64` elementwise on a uint64 array (wrapping arithmetic, constants pre-built for speed)."""
    x = x + _U64["golden"]
    x ^= x >> _U64["s1"]
    x *= _U64["m1"]
    x ^= x >> _U64["s2"]
    x *= _U64["m2"]
    x ^= x >> _U64["s3"]
    return x


def draw_indices(rng: np.random.Generator, cumulative: np.ndarray, size: int) -> np.ndarray:
    """``size`` indices drawn with the probabilities whose running sum is ``cumulative``."""
    return np.minimum(np.searchsorted(cumulative, rng.random(size), side="right"), len(cumulative) - 1)


class KeyedPermutation:
    """A pseudo-random permutation of ``range(size)`` computed on demand: O(1) memory, no shuffle to build.

    An 8-round Feistel network (splitmix64 round function, keyed by ``key``) is a bijection on the smallest
    even-bit power of two ≥ ``size``; cycle-walking (re-encrypting values ≥ ``size``) restricts it to
    ``range(size)``, still a bijection. The domain is < 4 × size, so few walks are needed.
    """

    ROUNDS = 8  # 4 suffice in theory; 8 make even tiny sizes (tested: 4 elements) near-uniform

    def __init__(self, size: int, key: int):
        if size < 1:
            raise ValueError("a permutation needs size >= 1")
        self.size = size
        self.half_bits = max(1, ((size - 1).bit_length() + 1) // 2)
        self._mask = np.uint64((1 << self.half_bits) - 1)
        self._shift = np.uint64(self.half_bits)
        self._round_keys = [np.uint64(mix64(key ^ mix64(r))) for r in range(self.ROUNDS)]

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> self._shift, x & self._mask
        for round_key in self._round_keys:
            left, right = right, left ^ (mix64_array(right ^ round_key) & self._mask)
        return (left << self._shift) | right

    def __getitem__(self, positions: slice) -> np.ndarray:
        """The permuted values at ``range(size)[positions]`` (a slice), as int64."""
        x = self._encrypt(np.arange(*positions.indices(self.size), dtype=np.uint64))
        outside = np.flatnonzero(x >= np.uint64(self.size))
        while len(outside):
            x[outside] = self._encrypt(x[outside])
            outside = outside[x[outside] >= np.uint64(self.size)]
        return x.astype(np.int64)
