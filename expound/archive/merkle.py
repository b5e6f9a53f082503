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

The log builds roots and proofs from stored nodes (`expound.archive.log`); this module
holds the hashing and the verification that a client needs with nothing else. The reference
tree the tests compare against lives in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "check_hash",
    "leaf_hash",
    "node_hash",
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


def check_hash(value: bytes, what: str) -> None:
    """Refuses a value that is not a 32-byte hash (raw bytes mistaken for one)."""
    if len(value) != HASH_SIZE:
        raise ValueError(
            f"{what} must be a {HASH_SIZE}-byte SHA-256 digest, got {len(value)} bytes"
        )


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
