"""README's role table says what the shipped policy grants, RPC for RPC.

The table had drifted: it listed `decider` as `Explain` only, without `ExplainBatch`, and
left out the auditor's history and access-log reads.
"""

from __future__ import annotations

import re

from expound.server.policy import RPCS, Access, load_policy
from tests.conftest import ROOT


def _readme_table() -> dict[str, set[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("| role | may call |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        role, grants = (cell.strip() for cell in line.strip("|").split("|"))
        rows[role.strip("`")] = set(re.findall(r"`(\w+)`", grants)) & RPCS
    return rows


def test_the_readme_role_table_is_the_shipped_policy() -> None:
    policy = load_policy(None)
    shipped = {
        role: {rpc for rpc in RPCS if policy.access([role], rpc) is not Access.NONE}
        for role in policy.roles
    }
    assert _readme_table() == shipped
