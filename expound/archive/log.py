"""The archive's Merkle log over stored nodes: O(log n) appends, roots and proofs.

A store keeps every *complete* subtree hash of the log as a node ``(level, index)``: the
subtree over leaves ``[index << level, (index + 1) << level)``. Level 0 holds the leaf
hashes. Nodes never change once written, so a store only ever inserts them.

From the nodes alone, without reading every leaf:

* the frontier of a log of ``size`` leaves is one node per set bit of ``size``
  (`frontier_keys`), so appending costs O(log n) reads and at most O(log n) new nodes;
* any RFC 6962 subtree ``[start, end)`` is the right fold of at most O(log n) complete
  nodes (`complete_parts`), so roots and proofs cost O(log n) node reads.

Every function here is pure: a store fetches the nodes the plans name, then hashes them.
Proof orders and shapes are those of the reference tree the tests compare against
(tests/support/merkle_reference.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from expound.archive.merkle import EMPTY_ROOT, HASH_SIZE, check_hash, node_hash

__all__ = [
    "LogAppend",
    "NodeKey",
    "Range",
    "complete_parts",
    "consistency_ranges",
    "fold_root",
    "frontier_keys",
    "hashes_of",
    "inclusion_ranges",
    "keys_of",
    "largest_power_of_two_below",
    "plan_append",
]

NodeKey = tuple[int, int]
"""``(level, index)`` of a complete subtree: leaves ``[index << level, (index + 1) << level)``."""

Range = tuple[int, int]
"""``[start, end)`` of leaves: one node of an RFC 6962 tree, complete or not."""


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n`` >= 2): RFC 6962's split ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def complete_parts(start: int, end: int) -> list[NodeKey]:
    """Splits an RFC 6962 subtree into its complete subtrees, largest (leftmost) first.

    Args:
        start: First leaf of the range.
        end: One past its last leaf; greater than ``start``.

    Returns:
        The nodes whose right fold is MTH(D[start:end]).

    Raises:
        ValueError: If the range is empty or is not a node of an RFC 6962 tree (its start
            is not aligned to its largest part).
    """
    if not 0 <= start < end:
        raise ValueError(f"not a non-empty range of leaves: [{start}, {end})")
    parts: list[NodeKey] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start % (1 << level):
            raise ValueError(f"[{start}, {end}) is not a subtree of an RFC 6962 tree")
        parts.append((level, start >> level))
        start += 1 << level
    return parts


def frontier_keys(size: int) -> list[NodeKey]:
    """The complete subtrees that make up a log of ``size`` leaves, left to right."""
    return complete_parts(0, size) if size else []


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes form the audit path of leaf ``index`` in a tree of ``size``.

    Args:
        index: 0-based leaf position, below ``size``.
        size: Tree size.

    Returns:
        Sibling ranges from the leaf upwards (RFC 9162 section 2.1.3.1).

    Raises:
        ValueError: If ``index`` is not between 0 and ``size - 1``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index must be between 0 and {size - 1}, got {index}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        split = start + largest_power_of_two_below(end - start)
        if index < split:
            ranges.append((split, end))
            end = split
        else:
            ranges.append((start, split))
            start = split
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The subtrees whose hashes prove the tree of ``old_size`` a prefix of ``new_size``.

    Args:
        old_size: Size of the earlier tree.
        new_size: Size of the later tree.

    Returns:
        Ranges in RFC 9162 section 2.1.4.1 order; none when ``old_size`` is 0 or equal.

    Raises:
        ValueError: If ``old_size`` is not between 0 and ``new_size``.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size must be between 0 and {new_size}, got {old_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[Range] = []
    start, end = 0, new_size
    old_is_whole_subtree = True
    while old_size != end:
        split = start + largest_power_of_two_below(end - start)
        if old_size <= split:
            ranges.append((split, end))
            end = split
        else:
            ranges.append((start, split))
            start = split
            old_is_whole_subtree = False
    if not old_is_whole_subtree:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def keys_of(ranges: Iterable[Range]) -> set[NodeKey]:
    """Every stored node that hashing ``ranges`` reads."""
    return {key for start, end in ranges for key in complete_parts(start, end)}


def hashes_of(ranges: Sequence[Range], nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """Hashes each range from the stored nodes named by `keys_of`.

    Args:
        ranges: The ranges, as from `inclusion_ranges` or `consistency_ranges`.
        nodes: At least the nodes `keys_of` named for them.

    Returns:
        One hash per range, in order.

    Raises:
        KeyError: If a node is missing (the store lost or never wrote it).
    """
    hashes = []
    for start, end in ranges:
        parts = complete_parts(start, end)
        folded = nodes[parts[-1]]
        for key in reversed(parts[:-1]):
            folded = node_hash(nodes[key], folded)
        hashes.append(folded)
    return hashes


def fold_root(frontier: Sequence[bytes]) -> bytes:
    """The root of a log from its frontier hashes (`EMPTY_ROOT` for none)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for subtree in reversed(frontier[:-1]):
        root = node_hash(subtree, root)
    return root


class LogAppend(NamedTuple):
    """What appending one leaf writes (a tuple: an audit builds one per entry).

    Attributes:
        seq: The leaf's 0-based index.
        leaf: The leaf hash.
        nodes: The new complete subtrees above level 0 that this leaf completes.
        frontier: The frontier hashes after the append.
        root: The root after the append.
    """

    seq: int
    leaf: bytes
    nodes: list[tuple[NodeKey, bytes]]
    frontier: list[bytes]
    root: bytes


def plan_append(size: int, frontier: Sequence[bytes], leaf: bytes) -> LogAppend:
    """Appends ``leaf`` to a log of ``size`` leaves with the given frontier.

    Args:
        size: Current number of leaves.
        frontier: Its frontier hashes (the nodes `frontier_keys` names), left to right.
        leaf: The new leaf hash.

    Returns:
        The nodes to write and the new frontier and root.

    Raises:
        ValueError: If the frontier does not have one hash per set bit of ``size``, or
            ``leaf`` is not a 32-byte hash.
    """
    if len(leaf) != HASH_SIZE:
        check_hash(leaf, "leaf")
    if len(frontier) != size.bit_count():
        raise ValueError(f"a log of size {size} has {size.bit_count()} frontier hashes")
    hashes = list(frontier)
    merged = leaf
    nodes: list[tuple[NodeKey, bytes]] = []
    level = 0
    while (size >> level) & 1:
        level += 1
        merged = node_hash(hashes.pop(), merged)
        nodes.append(((level, size >> level), merged))
    hashes.append(merged)
    root = merged
    for subtree in reversed(hashes[:-1]):
        root = node_hash(subtree, root)
    return LogAppend(size, leaf, nodes, hashes, root)
