"""Greedy maximum coverage with lazy evaluation.

Choosing ``k`` of the candidate sets to cover the most weight is NP-hard, but the
covered weight is monotone and submodular (a set adds less the more is covered
already), so the greedy choice — each step the set that adds the most — covers at
least ``1 − (1 − 1/k)^k > 1 − 1/e ≈ 63 %`` of what the best ``k`` sets could
(Nemhauser, Wolsey & Fisher 1978), and nothing better is possible in polynomial time
unless P = NP (Feige 1998). Lazy evaluation (Minoux 1978) keeps each set's last gain
as an upper bound in a heap and recomputes only the top one: the same choices as
plain greedy, with far fewer recomputations.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np


def greedy_max_coverage(sets: Sequence[np.ndarray], weight: np.ndarray, covered: np.ndarray, n_choose: int,
                        tie_weight: np.ndarray | None = None) -> tuple[list[int], list[float]]:
    """Choose up to ``n_choose`` of ``sets`` greedily for the most newly covered weight.

    Parameters
    ----------
    sets : sequence of int arrays
        Flat indices each candidate covers.
    weight : numpy.ndarray
        Weight of each flat index (≥ 0).
    covered : numpy.ndarray of bool
        Indices covered before any choice (not changed).
    n_choose : int
    tie_weight : numpy.ndarray, optional
        Breaks equal gains (e.g. area when ranking by people); then the lower index.

    Returns
    -------
    (chosen, gains)
        Candidate indices in the order chosen and the weight each added. Stops early
        when no candidate adds anything (weight and tie weight).
    """
    covered = covered.copy()
    tie = np.zeros_like(weight) if tie_weight is None else tie_weight

    def gain(i: int) -> tuple[float, float]:
        idx = sets[i]
        fresh = idx[~covered[idx]]
        return float(weight[fresh].sum()), float(tie[fresh].sum())

    heap = []
    for i in range(len(sets)):
        g, t = gain(i)
        heap.append((-g, -t, i))
    heapq.heapify(heap)
    chosen, gains = [], []
    while heap and len(chosen) < n_choose:
        _, _, i = heapq.heappop(heap)
        g, t = gain(i)
        if heap and (-g, -t, i) > heap[0]:
            heapq.heappush(heap, (-g, -t, i))  # its bound was stale and another may now be better
            continue
        if g <= 0.0 and t <= 0.0:
            break
        chosen.append(i)
        gains.append(g)
        covered[sets[i]] = True
    return chosen, gains
