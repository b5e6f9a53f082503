"""The archive's node-based Merkle log (`expound.archive.log`) against the reference tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expound.archive.log import (
    NodeKey,
    complete_parts,
    consistency_ranges,
    fold_root,
    frontier_keys,
    hashes_of,
    inclusion_ranges,
    keys_of,
    plan_append,
)
from expound.archive.merkle import leaf_hash
from tests.support.merkle_reference import MerkleTree


def build(size: int) -> tuple[list[bytes], dict[NodeKey, bytes], list[bytes]]:
    """Appends ``size`` leaves the way a store does, keeping every node it writes."""
    leaves = [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(size)]
    nodes: dict[NodeKey, bytes] = {}
    frontier: list[bytes] = []
    for seq, leaf in enumerate(leaves):
        step = plan_append(seq, frontier, leaf)
        assert step.seq == seq
        nodes[(0, seq)] = leaf
        for key, value in step.nodes:
            assert key not in nodes, "a node is written once"
            nodes[key] = value
        frontier = step.frontier
    return leaves, nodes, frontier


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 8, 13, 64, 100])
def test_appends_write_every_complete_subtree_and_the_right_root(size: int) -> None:
    leaves, nodes, frontier = build(size)
    tree = MerkleTree(leaves)
    assert fold_root(frontier) == tree.root()
    assert [nodes[key] for key in frontier_keys(size)] == frontier
    # Every aligned complete subtree exists: 2n - popcount(n) nodes in all.
    assert len(nodes) == 2 * size - size.bit_count()


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_proofs_from_nodes_equal_the_reference(size: int, data: st.DataObject) -> None:
    leaves, nodes, _ = build(size)
    tree = MerkleTree(leaves)
    index = data.draw(st.integers(0, size - 1))
    ranges = inclusion_ranges(index, size)
    assert hashes_of(ranges, {k: nodes[k] for k in keys_of(ranges)}) == tree.inclusion_proof(index)
    old = data.draw(st.integers(0, size))
    ranges = consistency_ranges(old, size)
    assert hashes_of(ranges, nodes) == tree.consistency_proof(old)
    assert hashes_of([(0, size)] if size else [], nodes) == [tree.root()]


def test_proofs_read_logarithmically_many_nodes() -> None:
    size = 1_000_003
    assert len(keys_of(inclusion_ranges(size // 3, size))) <= 2 * size.bit_length()
    assert len(keys_of(consistency_ranges(size // 3, size))) <= 3 * size.bit_length()


def test_complete_parts_refuses_ranges_that_are_not_tree_nodes() -> None:
    assert complete_parts(4, 7) == [(1, 2), (0, 6)]
    with pytest.raises(ValueError, match="not a subtree"):
        complete_parts(1, 3)
    with pytest.raises(ValueError, match="non-empty"):
        complete_parts(3, 3)


def test_plan_append_refuses_a_wrong_frontier() -> None:
    with pytest.raises(ValueError, match="frontier"):
        plan_append(3, [b"\0" * 32], leaf_hash(b"x"))


def test_missing_node_is_an_error_not_a_wrong_hash() -> None:
    _, nodes, _ = build(6)
    ranges = inclusion_ranges(5, 6)
    del nodes[(2, 0)]
    with pytest.raises(KeyError):
        hashes_of(ranges, nodes)
