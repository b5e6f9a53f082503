"""A drafting grammar's language as a regular expression, built apart from the decoders.

The drafting grammars are finite (no rule refers back to itself), so every rule inlines
into one alternation; a text is in the language when the expression matches it whole.
"""

from __future__ import annotations

import re

from expound.generators.grammar import Grammar


def language(grammar: Grammar) -> re.Pattern[str]:
    """The strings ``grammar`` admits, as a pattern to ``fullmatch``."""

    def rule(name: str) -> str:
        return (
            "(?:"
            + "|".join(
                "".join(re.escape(p) if isinstance(p, str) else rule(p.name) for p in seq)
                for seq in grammar.rules[name]
            )
            + ")"
        )

    return re.compile(rule("root"), re.DOTALL)
