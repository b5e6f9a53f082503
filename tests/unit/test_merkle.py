"""RFC 6962 / RFC 9162 hashing and verification (`expound.archive.merkle`), the log's
appends (`expound.archive.log.plan_append`) and the reference tree the tests use.

Known-answer vectors are copied from transparency-dev/merkle (the Go library Trillian and
Certificate Transparency use), Apache-2.0:
  - leaf inputs, root hashes for sizes 0..8 and compact-tree (frontier) hashes:
    testonly/constants.go (commit 582a6ad190b6848f1d26f8bf08ddef29955d9db1);
  - inclusion and consistency proofs: proof/verify_test.go
    (commit 02194e9afb6c1d95b5381350007963aa70fff472). That file numbers leaves from 1;
    the indices below are 0-based.
A log that no other implementation agrees with proves nothing to anyone, so these come first.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expound.archive.log import plan_append
from expound.archive.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from tests.support.merkle_reference import (
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    root_of,
)


def _append_all(leaves: list[bytes]) -> tuple[int, list[bytes], bytes]:
    """Appends ``leaves`` one by one as the log does: size, frontier and root after."""
    size, frontier, root = 0, list[bytes](), EMPTY_ROOT
    for leaf in leaves:
        step = plan_append(size, frontier, leaf)
        assert step.seq == size
        size, frontier, root = size + 1, step.frontier, step.root
    return size, frontier, root


def _h(hex_digest: str) -> bytes:
    return bytes.fromhex(hex_digest)


LEAF_INPUTS = [
    _h(""),
    _h("00"),
    _h("10"),
    _h("2021"),
    _h("3031"),
    _h("40414243"),
    _h("5051525354555657"),
    _h("606162636465666768696a6b6c6d6e6f"),
]
LEAVES = [leaf_hash(data) for data in LEAF_INPUTS]

# ROOTS[n] is the root of the tree over the first n leaves.
ROOTS = [
    _h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    _h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    _h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    _h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    _h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    _h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# NODES[level][i]: complete subtree hashes of the 8-leaf tree (testonly.NodeHashes).
NODES = [
    [
        _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        _h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        _h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        _h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        _h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        _h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [_h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# Frontier (compact tree) hashes for sizes 0..8, left to right (testonly.CompactTrees).
FRONTIERS = [
    [],
    [NODES[0][0]],
    [NODES[1][0]],
    [NODES[1][0], NODES[0][2]],
    [NODES[2][0]],
    [NODES[2][0], NODES[0][4]],
    [NODES[2][0], NODES[1][2]],
    [NODES[2][0], NODES[1][2], NODES[0][6]],
    [NODES[3][0]],
]

# (index, size, proof)
INCLUSION_VECTORS = [
    (0, 1, []),
    (
        0,
        8,
        [
            _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [_h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# (old_size, new_size, proof)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            _h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

SOME_HASH = _h("abacaba000000000000000000000000000000000000000000060061e00123456")


def _leaves(count: int) -> list[bytes]:
    return [leaf_hash(b"record-%d" % i) for i in range(count)]


def _flip(data: bytes, position: int, mask: int = 0x01) -> bytes:
    mutable = bytearray(data)
    mutable[position] ^= mask
    return bytes(mutable)


# ---- hashing primitives -------------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert ROOTS[0] == EMPTY_ROOT
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"") == ROOTS[1]
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(LEAVES[0], LEAVES[1]) == NODES[1][0]
    assert (
        node_hash(LEAVES[0], LEAVES[1]) == hashlib.sha256(b"\x01" + LEAVES[0] + LEAVES[1]).digest()
    )
    # A node is never mistaken for a leaf over the same bytes.
    assert node_hash(LEAVES[0], LEAVES[1]) != leaf_hash(LEAVES[0] + LEAVES[1])


def test_leaf_hashes_match_reference_nodes() -> None:
    assert NODES[0] == LEAVES


# ---- known answers ------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_root_of_matches_reference_roots(size: int) -> None:
    assert root_of(LEAVES[:size]).hex() == ROOTS[size].hex()


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_frontier_matches_reference_compact_trees(size: int) -> None:
    assert _append_all(LEAVES[:size]) == (size, FRONTIERS[size], ROOTS[size])


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_proof_matches_reference(index: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(index, LEAVES[:size]) == proof
    assert MerkleTree(LEAVES).inclusion_proof(index, size) == proof
    assert verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("old_size", "new_size", "proof"), CONSISTENCY_VECTORS)
def test_consistency_proof_matches_reference(
    old_size: int, new_size: int, proof: list[bytes]
) -> None:
    assert consistency_proof(old_size, LEAVES[:new_size]) == proof
    assert MerkleTree(LEAVES).consistency_proof(old_size, new_size) == proof
    assert verify_consistency(old_size, new_size, ROOTS[old_size], ROOTS[new_size], proof)


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS[1:])
def test_reference_inclusion_proofs_reject_corruption(
    index: int, size: int, proof: list[bytes]
) -> None:
    leaf, root = LEAVES[index], ROOTS[size]
    probes: dict[str, tuple[bytes, int, int, list[bytes], bytes]] = {
        "index - 1": (leaf, index - 1, size, proof, root),
        "index + 1": (leaf, index + 1, size, proof, root),
        "index ^ 2": (leaf, index ^ 2, size, proof, root),
        "size * 2": (leaf, index, size * 2, proof, root),
        "size // 2": (leaf, index, size // 2, proof, root),
        "wrong leaf": (b"WrongLeaf", index, size, proof, root),
        "empty root": (leaf, index, size, proof, EMPTY_ROOT),
        "random root": (leaf, index, size, proof, SOME_HASH),
        "trailing garbage": (leaf, index, size, [*proof, b""], root),
        "trailing root": (leaf, index, size, [*proof, root], root),
        "preceding garbage": (leaf, index, size, [b"", *proof], root),
        "preceding root": (leaf, index, size, [root, *proof], root),
        "removed component": (leaf, index, size, proof[:-1], root),
        "inserted component": (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root),
    }
    for position in range(len(proof)):
        corrupted = list(proof)
        corrupted[position] = _flip(corrupted[position], 0, 0x08)
        probes[f"proof[{position}] bit 3"] = (leaf, index, size, corrupted, root)
    accepted = [name for name, args in probes.items() if verify_inclusion(*args)]
    assert accepted == []


@pytest.mark.parametrize(("old_size", "new_size", "proof"), CONSISTENCY_VECTORS[1:])
def test_reference_consistency_proofs_reject_corruption(
    old_size: int, new_size: int, proof: list[bytes]
) -> None:
    old, new = ROOTS[old_size], ROOTS[new_size]
    probes: dict[str, tuple[int, int, bytes, bytes, list[bytes]]] = {
        "old_size - 1": (old_size - 1, new_size, old, new, proof),
        "old_size + 1": (old_size + 1, new_size, old, new, proof),
        "old_size ^ 2": (old_size ^ 2, new_size, old, new, proof),
        "new_size * 2": (old_size, new_size * 2, old, new, proof),
        "new_size // 2": (old_size, new_size // 2, old, new, proof),
        "wrong old root": (old_size, new_size, b"WrongRoot", new, proof),
        "wrong new root": (old_size, new_size, old, b"WrongRoot", proof),
        "swapped roots": (old_size, new_size, new, old, proof),
        "empty proof": (old_size, new_size, old, new, []),
        "trailing garbage": (old_size, new_size, old, new, [*proof, b""]),
        "trailing old root": (old_size, new_size, old, new, [*proof, old]),
        "trailing new root": (old_size, new_size, old, new, [*proof, new]),
        "preceding garbage": (old_size, new_size, old, new, [b"", *proof]),
        "preceding old root": (old_size, new_size, old, new, [old, *proof]),
        "preceding new root": (old_size, new_size, old, new, [new, *proof]),
        "preceding proof[0]": (old_size, new_size, old, new, [proof[0], *proof]),
        "truncated proof": (old_size, new_size, old, new, proof[:-1]),
    }
    for position in range(len(proof)):
        corrupted = list(proof)
        corrupted[position] = _flip(corrupted[position], 0, 0x10)
        probes[f"proof[{position}] bit 4"] = (old_size, new_size, old, new, corrupted)
    accepted = [name for name, args in probes.items() if verify_consistency(*args)]
    assert accepted == []


# ---- edge cases ---------------------------------------------------------------------------


def test_single_leaf_tree() -> None:
    leaf = leaf_hash(b"data")
    assert root_of([leaf]) == leaf
    assert inclusion_proof(0, [leaf]) == []
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    # Hashes of the wrong length never verify, even when they are equal to each other.
    assert not verify_inclusion(b"", 0, 1, [], b"")
    assert not verify_inclusion(leaf, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], leaf)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 1)])
def test_verify_inclusion_rejects_impossible_positions(index: int, size: int) -> None:
    assert not verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)
    assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


def test_consistency_trivial_cases() -> None:
    root = ROOTS[3]
    assert consistency_proof(0, LEAVES[:3]) == []
    assert consistency_proof(3, LEAVES[:3]) == []
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 3, EMPTY_ROOT, root, [])
    assert verify_consistency(3, 3, root, root, [])
    # Equal sizes need equal roots and an empty proof.
    assert not verify_consistency(3, 3, root, ROOTS[4], [])
    assert not verify_consistency(3, 3, root, root, [EMPTY_ROOT])
    # An empty tree has exactly one root.
    assert not verify_consistency(0, 3, SOME_HASH, root, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, SOME_HASH, [])
    assert not verify_consistency(0, 3, EMPTY_ROOT, root, [EMPTY_ROOT])
    # Logs never shrink.
    assert not verify_consistency(3, 2, root, ROOTS[2], [])
    assert not verify_consistency(-1, 2, root, ROOTS[2], [])


@pytest.mark.parametrize("index", [-1, 3, 4])
def test_inclusion_proof_rejects_out_of_range_index(index: int) -> None:
    with pytest.raises(ValueError, match="index"):
        inclusion_proof(index, LEAVES[:3])


def test_inclusion_proof_rejects_empty_tree() -> None:
    with pytest.raises(ValueError, match="empty"):
        inclusion_proof(0, [])


@pytest.mark.parametrize("old_size", [-1, 4])
def test_consistency_proof_rejects_out_of_range_size(old_size: int) -> None:
    with pytest.raises(ValueError, match="old_size"):
        consistency_proof(old_size, LEAVES[:3])


def test_merkle_tree_rejects_out_of_range_sizes() -> None:
    tree = MerkleTree(LEAVES[:3])
    with pytest.raises(ValueError, match="size"):
        tree.root(4)
    with pytest.raises(ValueError, match="size"):
        tree.inclusion_proof(0, 4)
    with pytest.raises(ValueError, match="new_size"):
        tree.consistency_proof(1, 4)
    with pytest.raises(ValueError, match="old_size"):
        tree.consistency_proof(3, 2)


def test_leaf_hashes_must_be_sha256_digests() -> None:
    with pytest.raises(ValueError, match="32"):
        plan_append(0, [], b"raw record bytes, not a leaf hash")
    with pytest.raises(ValueError, match="32"):
        root_of([b"short"])
    with pytest.raises(ValueError, match="32"):
        MerkleTree([LEAVES[0], b"short"])


def test_an_append_validates_the_frontier_count() -> None:
    with pytest.raises(ValueError, match="frontier hashes"):
        plan_append(3, [NODES[1][0]], LEAVES[3])
    with pytest.raises(ValueError, match="frontier hashes"):
        plan_append(0, [NODES[1][0]], LEAVES[0])


def test_an_append_leaves_the_frontier_it_was_given_unchanged() -> None:
    frontier = [LEAVES[0]]
    step = plan_append(1, frontier, LEAVES[1])
    assert frontier == [LEAVES[0]] and step.frontier == FRONTIERS[2]
    assert step.root == ROOTS[2]


# ---- properties ---------------------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=70)


@settings(max_examples=60, deadline=None)
@given(size=sizes)
def test_every_inclusion_proof_verifies(size: int) -> None:
    leaves = _leaves(size)
    tree = MerkleTree(leaves)
    root = root_of(leaves)
    assert tree.root() == root
    for index in range(size):
        proof = tree.inclusion_proof(index)
        assert proof == inclusion_proof(index, leaves)
        assert verify_inclusion(leaves[index], index, size, proof, root)


@settings(max_examples=60, deadline=None)
@given(new_size=sizes)
def test_every_consistency_proof_verifies(new_size: int) -> None:
    leaves = _leaves(new_size)
    tree = MerkleTree(leaves)
    new_root = root_of(leaves)
    for old_size in range(new_size + 1):
        proof = tree.consistency_proof(old_size)
        assert proof == consistency_proof(old_size, leaves)
        assert verify_consistency(old_size, new_size, root_of(leaves[:old_size]), new_root, proof)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), size=sizes)
def test_tampered_inclusion_never_verifies(data: st.DataObject, size: int) -> None:
    leaves = _leaves(size)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(index, leaves)
    root = root_of(leaves)
    leaf = leaves[index]
    byte = data.draw(st.integers(0, 31), label="byte")
    mask = data.draw(st.integers(1, 255), label="mask")

    assert not verify_inclusion(_flip(leaf, byte, mask), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, _flip(root, byte, mask))
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1), label="position")
        corrupted = list(proof)
        corrupted[position] = _flip(corrupted[position], byte, mask)
        assert not verify_inclusion(leaf, index, size, corrupted, root)
    other_index = data.draw(st.integers(0, size).filter(lambda i: i != index), label="other")
    assert not verify_inclusion(leaf, other_index, size, proof, root)
    assert not verify_inclusion(leaf, index, size * 2, proof, root)
    assert not verify_inclusion(leaf, index, size // 2, proof, root)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), size=sizes)
def test_inclusion_proof_verifies_under_another_size_only_if_it_is_that_proof(
    data: st.DataObject, size: int
) -> None:
    # RFC 6962 verifiers cannot tell a leaf hash from a node hash inside a proof, so a
    # (size, root) pair is only meaningful as it comes out of one signed checkpoint. What
    # must hold: a proof accepted for another size against that size's real root is the
    # genuine proof for it (the leaf sits in a complete subtree both trees share).
    leaves = _leaves(2 * size + 2)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(index, leaves[:size])
    other_size = data.draw(
        st.integers(index + 1, 2 * size + 2).filter(lambda s: s != size), label="other_size"
    )
    other_root = root_of(leaves[:other_size])
    accepted = verify_inclusion(leaves[index], index, other_size, proof, other_root)
    assert accepted == (proof == inclusion_proof(index, leaves[:other_size]))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), new_size=st.integers(min_value=2, max_value=70))
def test_tampered_consistency_never_verifies(data: st.DataObject, new_size: int) -> None:
    leaves = _leaves(new_size)
    old_size = data.draw(st.integers(1, new_size - 1), label="old_size")
    proof = consistency_proof(old_size, leaves)
    old_root, new_root = root_of(leaves[:old_size]), root_of(leaves)
    assert proof, "a proof between different non-empty sizes is never empty"
    byte = data.draw(st.integers(0, 31), label="byte")
    mask = data.draw(st.integers(1, 255), label="mask")
    position = data.draw(st.integers(0, len(proof) - 1), label="position")
    corrupted = list(proof)
    corrupted[position] = _flip(corrupted[position], byte, mask)

    assert not verify_consistency(old_size, new_size, old_root, new_root, corrupted)
    flipped_old = _flip(old_root, byte, mask)
    assert not verify_consistency(old_size, new_size, flipped_old, new_root, proof)
    flipped_new = _flip(new_root, byte, mask)
    assert not verify_consistency(old_size, new_size, old_root, flipped_new, proof)
    other_old = data.draw(st.integers(0, new_size).filter(lambda s: s != old_size), label="o")
    assert not verify_consistency(other_old, new_size, old_root, new_root, proof)
    assert not verify_consistency(old_size, new_size * 2, old_root, new_root, proof)
    assert not verify_consistency(old_size, new_size // 2, old_root, new_root, proof)
    other_new = data.draw(
        st.integers(old_size + 1, 2 * new_size).filter(lambda s: s != new_size), label="n"
    )
    longer = _leaves(2 * new_size)
    accepted = verify_consistency(old_size, other_new, old_root, root_of(longer[:other_new]), proof)
    assert accepted == (proof == consistency_proof(old_size, longer[:other_new]))


@settings(max_examples=30, deadline=None)
@given(size=st.integers(min_value=0, max_value=70))
def test_appended_root_matches_root_of_at_every_size(size: int) -> None:
    leaves = _leaves(size)
    assert _append_all([])[2] == EMPTY_ROOT
    for count in range(1, size + 1):
        appended, frontier, root = _append_all(leaves[:count])
        assert appended == count
        assert root == root_of(leaves[:count])
        assert len(frontier) == count.bit_count()


@settings(max_examples=30, deadline=None)
@given(size=st.integers(min_value=0, max_value=70), extra=st.integers(0, 10))
def test_a_stored_frontier_keeps_growing_into_the_same_tree(size: int, extra: int) -> None:
    leaves = _leaves(size + extra)
    count, frontier, root = _append_all(leaves[:size])
    assert count == size and root == root_of(leaves[:size])
    for leaf in leaves[size:]:
        step = plan_append(count, list(frontier), leaf)
        count, frontier, root = count + 1, step.frontier, step.root
    assert root == root_of(leaves)


# ---- scale --------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_proof_over_100k_records_verifies() -> None:
    # How long an audit of 100k records takes is measured by `make bench`, not here.
    count = 100_000
    leaves = _leaves(count)
    tree = MerkleTree(leaves)
    root = tree.root()
    assert root == root_of(leaves)
    for index in range(count):
        assert verify_inclusion(leaves[index], index, count, tree.inclusion_proof(index), root)
    for old_size in range(1, count, 997):
        proof = tree.consistency_proof(old_size)
        assert verify_consistency(old_size, count, tree.root(old_size), root, proof)


def test_single_call_proofs_over_100k_leaves_do_not_recurse_deeply() -> None:
    leaves = _leaves(100_000)
    root = root_of(leaves)
    proof = inclusion_proof(99_999, leaves)
    assert verify_inclusion(leaves[99_999], 99_999, 100_000, proof, root)
    proof = consistency_proof(65_537, leaves)
    assert verify_consistency(65_537, 100_000, root_of(leaves[:65_537]), root, proof)
