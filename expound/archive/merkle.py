"""RFC 6962 / RFC 9162 (section 2.1) Merkle tree hashing, proofs and verification.

The archive is an append-only log. Every record is a leaf; the log's state at size ``n`` is
the Merkle Tree Hash (MTH) of its first ``n`` leaves, and two proofs tie states together:

* an *inclusion proof* (audit path) shows that a leaf sits at a given index of a tree;
* a *consistency proof* shows that the tree of size ``m`` is a prefix of the tree of size
  ``n``, i.e. nothing already logged was changed or removed.

Hashing follows RFC 6962 exactly (SHA-256, with a one-byte prefix that separates leaves from
interior nodes), so any Certificate Transparency or Trillian tool can check our proofs.

Every function here works on *leaf hashes* (``leaf_hash(record_bytes)``), never on raw
records, and checks that what it is given is 32 bytes long, so that raw bytes are not
mistaken for a hash.

Two ways to build proofs:

* the module functions (`root_of`, `inclusion_proof`, `consistency_proof`) take the leaf
  hashes and cost O(n) each call, for one-off proofs;
* `MerkleTree` hashes the leaves once (O(n)) and then answers roots and proofs for any
  size up to ``n`` in O(log n), for audits that check every record.

`Frontier` keeps only the O(log n) right-edge subtree roots, which is all that appending
and computing the current root need.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the empty tree: SHA-256 of the empty string (RFC 6962 section 2.1)."""


def leaf_hash(data: bytes) -> bytes:
    """Hashes one log entry into a leaf: SHA-256(0x00 || data).

    Args:
        data: The entry's bytes (for expound, a record's canonical JSON).

    Returns:
        The 32-byte leaf hash.
    """
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hashes two child hashes into their parent: SHA-256(0x01 || left || right).

    Args:
        left: Hash of the left subtree.
        right: Hash of the right subtree.

    Returns:
        The 32-byte interior node hash.
    """
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(
            f"{what} must be a {HASH_SIZE}-byte SHA-256 digest, got {len(value)} bytes"
        )


def _largest_power_of_two_below(n: int) -> int:
    """Returns the largest power of two strictly less than ``n`` (``n`` >= 2): RFC 6962's k."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The right edge of an append-only Merkle tree: enough to append and to compute the root.

    For a tree of ``size`` leaves the frontier holds one complete-subtree root per set bit of
    ``size``, ordered left to right (largest subtree first), so it has ``popcount(size)``
    hashes. Appending a leaf merges equal-sized subtrees like a binary counter: O(log n)
    hashes at worst, O(1) amortised.
    """

    def __init__(self) -> None:
        """Creates the frontier of the empty tree."""
        self._size = 0
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf: bytes) -> None:
        """Appends one leaf.

        Args:
            leaf: The leaf's *hash*, as returned by `leaf_hash`, not the raw entry.

        Raises:
            ValueError: If ``leaf`` is not 32 bytes long.
        """
        _check_hash(leaf, "leaf")
        merged = leaf
        carry = self._size
        while carry & 1:
            merged = node_hash(self._hashes.pop(), merged)
            carry >>= 1
        self._hashes.append(merged)
        self._size += 1

    def root(self) -> bytes:
        """Returns the Merkle Tree Hash of all leaves appended so far.

        Returns:
            The 32-byte root; `EMPTY_ROOT` when nothing has been appended.
        """
        if not self._hashes:
            return EMPTY_ROOT
        root = self._hashes[-1]
        for subtree in reversed(self._hashes[:-1]):
            root = node_hash(subtree, root)
        return root

    def to_hashes(self) -> list[bytes]:
        """Returns the frontier hashes for persistence, left to right (a copy).

        Returns:
            ``popcount(size)`` 32-byte hashes; store them with `size`.
        """
        return list(self._hashes)

    @classmethod
    def from_hashes(cls, size: int, hashes: Sequence[bytes]) -> Frontier:
        """Restores a frontier saved with `size` and `to_hashes`.

        Args:
            size: Number of leaves in the tree.
            hashes: The frontier hashes, left to right.

        Returns:
            A frontier that continues exactly where the saved one stopped.

        Raises:
            ValueError: If ``size`` is negative, the number of hashes is not
                ``popcount(size)``, or a hash is not 32 bytes long.
        """
        if size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        expected = size.bit_count()
        if len(hashes) != expected:
            raise ValueError(
                f"a frontier of size {size} has popcount(size) = {expected} hashes, "
                f"got {len(hashes)}"
            )
        for position, subtree in enumerate(hashes):
            _check_hash(subtree, f"frontier hash {position}")
        frontier = cls()
        frontier._size = size
        frontier._hashes = list(hashes)
        return frontier


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """Computes the Merkle Tree Hash of a list of leaf hashes (iteratively, O(n)).

    Args:
        leaf_hashes: The leaves' hashes, in log order.

    Returns:
        The 32-byte root; `EMPTY_ROOT` for no leaves.

    Raises:
        ValueError: If a leaf hash is not 32 bytes long.
    """
    frontier = Frontier()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier.root()


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
            _check_hash(leaf, f"leaf hash {index}")
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
            split = start + _largest_power_of_two_below(width)
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
            split = start + _largest_power_of_two_below(end - start)
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
            split = start + _largest_power_of_two_below(end - start)
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


def _all_hashes(*values: bytes, proof: Sequence[bytes]) -> bool:
    return all(len(value) == HASH_SIZE for value in (*values, *proof))


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Checks an inclusion proof (RFC 9162 section 2.1.3.2).

    ``size`` and ``root`` must come from the same trusted (signed) checkpoint: RFC 6962
    proofs cannot tell a leaf from a subtree, so a proof can also fit a root under a size
    it was not made for.

    Args:
        leaf: The leaf's hash.
        index: The leaf's claimed 0-based position.
        size: The tree size the proof was made for.
        proof: The audit path, from the leaf upwards.
        root: The trusted root of the tree of ``size`` leaves.

    Returns:
        True only when the proof places ``leaf`` at ``index`` in the tree with ``root``.
        Any malformed input (negative numbers, ``index >= size``, hashes that are not 32
        bytes) gives False rather than an exception, so untrusted input can be passed as is.
    """
    if not 0 <= index < size or not _all_hashes(leaf, root, proof=proof):
        return False
    fn, sn = index, size - 1
    computed = leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            computed = node_hash(sibling, computed)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            computed = node_hash(computed, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(computed, root)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Checks a consistency proof (RFC 9162 section 2.1.4.2).

    Beyond the RFC algorithm: equal sizes need equal roots and an empty proof, and a size-0
    tree must have `EMPTY_ROOT` (its only possible root) and an empty proof.

    Args:
        old_size: Size of the earlier tree.
        new_size: Size of the later tree.
        old_root: Trusted root of the earlier tree.
        new_root: Trusted root of the later tree.
        proof: The consistency proof.

    Returns:
        True only when the tree with ``old_root`` is a prefix of the tree with ``new_root``.
        Malformed input (negative or shrinking sizes, hashes that are not 32 bytes) gives
        False rather than an exception.
    """
    if not 0 <= old_size <= new_size or not _all_hashes(old_root, new_root, proof=proof):
        return False
    if old_size == 0:
        new_ok = new_size != 0 or hmac.compare_digest(new_root, EMPTY_ROOT)
        return not proof and hmac.compare_digest(old_root, EMPTY_ROOT) and new_ok
    if old_size == new_size:
        return not proof and hmac.compare_digest(old_root, new_root)
    if not proof:
        return False

    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_computed = new_computed = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old_computed = node_hash(node, old_computed)
            new_computed = node_hash(node, new_computed)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            new_computed = node_hash(new_computed, node)
        fn >>= 1
        sn >>= 1
    return (
        sn == 0
        and hmac.compare_digest(old_computed, old_root)
        and hmac.compare_digest(new_computed, new_root)
    )
