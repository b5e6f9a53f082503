"""The reference RFC 6962 Merkle tree the archive's log is tested against.

Built from all leaves, O(n): too slow for the service, which keeps nodes instead
(`expound.archive.log`), but short enough to check by eye against RFC 9162.
"""

from __future__ import annotations

from collections.abc import Sequence

from expound.archive.log import largest_power_of_two_below, plan_append
from expound.archive.merkle import EMPTY_ROOT, check_hash, node_hash


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """Computes the Merkle Tree Hash of a list of leaf hashes (iteratively, O(n)).

    Args:
        leaf_hashes: The leaves' hashes, in log order.

    Returns:
        The 32-byte root; `EMPTY_ROOT` for no leaves.

    Raises:
        ValueError: If a leaf hash is not 32 bytes long.
    """
    size, frontier, root = 0, [], EMPTY_ROOT
    for leaf in leaf_hashes:
        step = plan_append(size, frontier, leaf)
        size, frontier, root = size + 1, step.frontier, step.root
    return root


class MerkleTree:
    """All complete-subtree hashes of a log, for O(log n) roots and proofs at any size.

    Built once from the leaf hashes in O(n) time and about 2n hashes of memory. Level 0 holds
    the leaves and level ``h + 1`` the parents of adjacent pairs in level ``h``, so the hash
    of every aligned complete subtree is a list lookup. The few incomplete right-edge
    subtrees a tree of a given size needs are hashed on demand and cached.
    """

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        """Hashes the tree over ``leaf_hashes``.

        Args:
            leaf_hashes: The leaves' hashes, in log order.

        Raises:
            ValueError: If a leaf hash is not 32 bytes long.
        """
        leaves = list(leaf_hashes)
        for index, leaf in enumerate(leaves):
            check_hash(leaf, f"leaf hash {index}")
        self._levels: list[list[bytes]] = [leaves]
        level = leaves
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            self._levels.append(level)
        self._incomplete: dict[tuple[int, int], bytes] = {}

    @property
    def size(self) -> int:
        """Number of leaves in the tree."""
        return len(self._levels[0])

    def _check_size(self, size: int | None, name: str = "size") -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"{name} must be between 0 and {self.size}, got {size}")
        return size

    def _subtree(self, start: int, end: int) -> bytes:
        """Returns MTH(D[start:end]) for a node of an RFC 6962 tree (non-empty range)."""
        width = end - start
        if width & (width - 1) == 0 and start % width == 0:
            height = width.bit_length() - 1
            return self._levels[height][start >> height]
        cached = self._incomplete.get((start, end))
        if cached is None:
            # RFC 6962 splits at the largest power of two below the width; the left part is
            # then aligned and complete, so this recursion only runs down the right edge.
            split = start + largest_power_of_two_below(width)
            cached = node_hash(self._subtree(start, split), self._subtree(split, end))
            self._incomplete[(start, end)] = cached
        return cached

    def root(self, size: int | None = None) -> bytes:
        """Returns the root of the tree over the first ``size`` leaves.

        Args:
            size: Tree size; the whole tree when omitted.

        Returns:
            The 32-byte root; `EMPTY_ROOT` for size 0.

        Raises:
            ValueError: If ``size`` is negative or larger than the tree.
        """
        size = self._check_size(size)
        return self._subtree(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Returns the audit path of leaf ``index`` in the tree of the first ``size`` leaves.

        This is PATH(m, D[n]) of RFC 9162 section 2.1.3.1, built top-down without recursion.

        Args:
            index: 0-based position of the leaf.
            size: Tree size; the whole tree when omitted.

        Returns:
            Sibling hashes from the leaf upwards (empty for a one-leaf tree).

        Raises:
            ValueError: If ``size`` is out of range, the tree is empty, or ``index`` is not
                below ``size``.
        """
        size = self._check_size(size)
        if size == 0:
            raise ValueError("an empty tree has no inclusion proofs")
        if not 0 <= index < size:
            raise ValueError(f"index must be between 0 and {size - 1}, got {index}")
        siblings: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            split = start + largest_power_of_two_below(end - start)
            if index < split:
                siblings.append(self._subtree(split, end))
                end = split
            else:
                siblings.append(self._subtree(start, split))
                start = split
        siblings.reverse()
        return siblings

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Returns the proof that the tree of ``old_size`` leaves is a prefix of ``new_size``.

        This is PROOF(m, D[n]) of RFC 9162 section 2.1.4.1, built top-down without recursion.
        The proof is empty when ``old_size`` is 0 or equals ``new_size``.

        Args:
            old_size: Size of the earlier tree.
            new_size: Size of the later tree; the whole tree when omitted.

        Returns:
            The consistency proof, in RFC order.

        Raises:
            ValueError: If ``new_size`` is out of range or ``old_size`` is not between 0 and
                ``new_size``.
        """
        new_size = self._check_size(new_size, "new_size")
        if not 0 <= old_size <= new_size:
            raise ValueError(f"old_size must be between 0 and {new_size}, got {old_size}")
        if old_size in (0, new_size):
            return []
        nodes: list[bytes] = []
        start, end = 0, new_size
        old_is_whole_subtree = True
        while old_size != end:
            split = start + largest_power_of_two_below(end - start)
            if old_size <= split:
                nodes.append(self._subtree(split, end))
                end = split
            else:
                nodes.append(self._subtree(start, split))
                start = split
                old_is_whole_subtree = False
        # SUBPROOF(m, D[m], false) = [MTH(D[m])]: the old tree's last subtree, which the
        # verifier cannot rebuild from the old root alone.
        if not old_is_whole_subtree:
            nodes.append(self._subtree(start, end))
        nodes.reverse()
        return nodes


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Returns the audit path of leaf ``index`` in the tree over ``leaf_hashes``.

    O(n); to prove many leaves of one tree, build a `MerkleTree` once instead.

    Args:
        index: 0-based position of the leaf.
        leaf_hashes: All leaves' hashes; the tree size is their number.

    Returns:
        Sibling hashes from the leaf upwards (RFC 9162 section 2.1.3.1).

    Raises:
        ValueError: If the tree is empty, ``index`` is out of range, or a leaf hash is not
            32 bytes long.
    """
    if not leaf_hashes:
        raise ValueError("an empty tree has no inclusion proofs")
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"index must be between 0 and {len(leaf_hashes) - 1}, got {index}")
    return MerkleTree(leaf_hashes).inclusion_proof(index)


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Returns the proof that the first ``old_size`` leaves form a prefix of the whole tree.

    O(n); to build many proofs over one tree, build a `MerkleTree` once instead.

    Args:
        old_size: Size of the earlier tree.
        leaf_hashes: All leaves' hashes of the later tree.

    Returns:
        The consistency proof (RFC 9162 section 2.1.4.1); empty when ``old_size`` is 0 or
        equals the number of leaves.

    Raises:
        ValueError: If ``old_size`` is negative or larger than the number of leaves, or a
            leaf hash is not 32 bytes long.
    """
    if not 0 <= old_size <= len(leaf_hashes):
        raise ValueError(f"old_size must be between 0 and {len(leaf_hashes)}, got {old_size}")
    return MerkleTree(leaf_hashes).consistency_proof(old_size)
