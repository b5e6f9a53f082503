"""Jump-forward decoding: the model decodes only where the grammar leaves it a choice.

Under a drafting grammar (:class:`expound.generators.grammar.Grammar`) most of a text is
forced: literal strings, and rules with one alternative. A decode step costs the same
whether its token was forced or free (on the embedded CPU server ~57 ms, most of it
Gemma's 262k-token output layer), while text appended to the prompt is prefilled over a
cached prefix for a fraction of that. So a candidate is drafted as a walk through its
grammar (:func:`forced`, :func:`options`):

1. forced text is appended to the text so far without asking the model (consecutive
   forced spans, single-alternative rules included, merge into one);
2. at a choice point the model is asked to choose: one request whose structured output
   is a ``choice`` among the alternatives' shortest distinguishing prefixes
   (:func:`decisive_prefixes`), with ``max_tokens`` just enough to tell them apart
   (counted with the server's tokenizer, cached per prefix) and only the prefixes' own
   tokens allowed; an alternative that is empty (an optional part) is replaced by the
   alternatives of what follows it, so the model weighs "say this" against "go on";
3. the chosen alternative is appended whole, up to the next choice point, and so on.

Every text is therefore a string of the grammar's language, as with whole-grammar
structured outputs, and the gate's guarantees are unchanged. The n candidates are n
chains, each with its own grammar and seed, run concurrently (the server batches them).
Each draft keeps the log-probabilities of the tokens the model chose and what it chose
("rule=alternative").
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from expound.errors import LLMError
from expound.generators.base import ChoiceRequest, Generator, first_failure
from expound.generators.grammar import Grammar, Item, Ref
from expound.llm.client import LLM_BAD_RESPONSE

# A walk longer than this is a grammar that loops, not an explanation.
MAX_STEPS = 256
# Tokens asked for when the server cannot count them: enough for a word or two.
UNCOUNTED_TOKENS = 4
# Asking again with more tokens when a choice is still open (odd token splits).
MAX_TOKENS_PER_CHOICE = 48
TOKEN_CACHE_SIZE = 8192
# Forced text this short (in tokens) between two choice points is decoded rather than
# given a request of its own (~0.15 s alone, ~0.7 s among 16 chains; a step ~0.06 s).
LOOKAHEAD_TOKENS = 3
# A word with the white space before it: the unit token counts are cached by.
WORD = re.compile(r"\s*\S+|\s+")
Tokens = tuple[int, ...] | None


@dataclass(frozen=True)
class Option:
    """One way on from a choice point.

    ``text`` is forced once the option is chosen: everything up to the next choice point
    (``""`` only where the text may end). ``rest`` is what follows (empty at the end);
    ``chose`` names the alternatives it takes, "rule=index" (0-based).
    """

    text: str
    rest: tuple[Item, ...]
    chose: tuple[str, ...]


def forced(grammar: Grammar, items: Sequence[Item]) -> tuple[str, tuple[Item, ...]]:
    """The forced text at the start of ``items``, and what follows it (a choice, or nothing).

    Raises:
        ValueError: the grammar expands without end.
    """
    text: list[str] = []
    pending = tuple(items)
    for _ in range(MAX_STEPS * 16):
        if not pending:
            return "".join(text), ()
        head = pending[0]
        if isinstance(head, str):
            text.append(head)
            pending = pending[1:]
            continue
        alternatives = grammar.rules[head.name]
        if len(alternatives) > 1:
            return "".join(text), pending
        pending = (*alternatives[0], *pending[1:])
    raise ValueError("the grammar expands without end")


def options(grammar: Grammar, items: tuple[Item, ...], depth: int = 0) -> list[Option]:
    """The ways on from the choice point that starts ``items``, distinct by text.

    An alternative with no forced text before the next choice (empty, or starting with a
    choice of its own) is replaced by that choice's options, so every option but the end
    of the text starts with text the model can be asked to write.
    """
    if depth > MAX_STEPS:
        raise ValueError("the grammar expands without end")
    head = items[0]
    assert isinstance(head, Ref)
    found: dict[str, Option] = {}
    for index, alternative in enumerate(grammar.rules[head.name]):
        label = f"{head.name}={index}"
        text, rest = forced(grammar, (*alternative, *items[1:]))
        if text or not rest:
            found.setdefault(text, Option(text, rest, (label,)))
            continue
        for option in options(grammar, rest, depth + 1):
            found.setdefault(option.text, Option(option.text, option.rest, (label, *option.chose)))
    return list(found.values())


def decisive_prefixes(texts: Sequence[str]) -> list[str]:
    """Each text cut after the word in which it parts from every other text.

    Distinct texts give distinct prefixes; a prefix is the whole text where the text is
    the start of another (the choice then ends there or goes on). Cutting at a word's end
    leaves the model a whole word to write, and the next option starts with a space.
    """
    cuts = []
    for i, text in enumerate(texts):
        shared = max((_common(text, other) for j, other in enumerate(texts) if j != i), default=0)
        end = text.find(" ", shared + 1)
        cuts.append(text if end < 0 else text[:end])
    return cuts


# A choice whose options part only after more words than this is made in stages.
STAGE_WORDS = 4


def stage_prefixes(texts: Sequence[str]) -> list[str]:
    """Each text cut after the word in which it first parts from some other text: options
    with the same stage prefix go on together to a later stage."""
    cuts = []
    for i, text in enumerate(texts):
        shared = min((_common(text, other) for j, other in enumerate(texts) if j != i), default=0)
        end = text.find(" ", shared + 1)
        cuts.append(text if end < 0 else text[:end])
    return cuts


def shared_lead(texts: Sequence[str]) -> int:
    """How much of the options' text they all start with, cut before a space so each keeps
    a word of its own (the model then starts each remainder with a whole word); 0 if none.

    An option that is the start of another (an optional part that may follow) shares all
    but its last word, so only that word and the part are left to choose between.
    """
    if len(texts) < 2 or not all(texts):
        return 0
    common = min(_common(texts[0], other) for other in texts[1:])
    common = min(common, *(len(t) - 1 for t in texts))
    return max(texts[0].rfind(" ", 0, common), 0)


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def tokens_to_decide(spelled: Sequence[Sequence[int]]) -> int:
    """Decode steps that tell the choices apart, spelled as token sequences.

    A choice needs its tokens up to the first one no other choice shares, or, where it
    is the start of another, one more step to end.
    """
    steps = 1
    for i, tokens in enumerate(spelled):
        shared = max(
            (_common_tokens(tokens, other) for j, other in enumerate(spelled) if j != i), default=0
        )
        steps = max(steps, min(shared + 1, len(tokens) + 1))
    return steps


def _common_tokens(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def chain_seed(seed: int, chain: int, step: int) -> int:
    """The sampling seed of one request: distinct per chain and step, same for same inputs."""
    digest = hashlib.sha256(f"{seed}/{chain}/{step}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass
class JumpDraft:
    """One candidate drafted by jump-forward decoding."""

    text: str = ""
    token_logprobs: list[float] = field(default_factory=list)
    chose: list[str] = field(default_factory=list)
    requests: int = 0
    completion_tokens: int = 0
    model: str = ""


@dataclass(frozen=True)
class JumpResult:
    """The chains' drafts, in chain order, and what they cost."""

    drafts: list[JumpDraft]
    model: str
    latency_ms: float
    requests: int
    completion_tokens: int


class JumpDecoder:
    """Drafts candidates by jump-forward decoding through a :class:`Generator`."""

    def __init__(self, generator: Generator, temperature: float) -> None:
        self._generator = generator
        self._temperature = temperature
        # Tokens of decisive prefixes: mostly phrase-bank words, shared by every decision.
        self._tokens: OrderedDict[str, Tokens] = OrderedDict()

    async def decode(
        self,
        prompt: str,
        grammars: Sequence[Grammar],
        seed: int,
        deadline: float,
        on_draft: Callable[[str], None] | None = None,
    ) -> JumpResult:
        """One candidate per grammar, chains run concurrently, by ``deadline``
        (``time.monotonic()``; the caller also bounds the whole call).

        Args:
            on_draft: called with each chain's text as soon as that chain ends, while the
                others go on (what comes after drafting can start on it).

        Raises:
            LLMError: a request failed or was answered off the grammar; no drafts then.
        """
        started = time.perf_counter()
        counting: dict[str, asyncio.Task[Tokens]] = {}
        try:
            # One chain failing stops the others: a call's drafts come whole or not at all.
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(
                        self._chain(prompt, grammar, seed, chain, deadline, counting, on_draft)
                    )
                    for chain, grammar in enumerate(grammars)
                ]
        except ExceptionGroup as failed:
            raise first_failure(failed) from None
        drafts = [task.result() for task in tasks]
        return JumpResult(
            drafts=drafts,
            model=next((d.model for d in drafts if d.model), ""),
            latency_ms=(time.perf_counter() - started) * 1000,
            requests=sum(d.requests for d in drafts),
            completion_tokens=sum(d.completion_tokens for d in drafts),
        )

    async def _chain(
        self,
        prompt: str,
        grammar: Grammar,
        seed: int,
        chain: int,
        deadline: float,
        counting: dict[str, asyncio.Task[Tokens]],
        on_draft: Callable[[str], None] | None = None,
    ) -> JumpDraft:
        draft = JumpDraft()
        text, rest = forced(grammar, grammar.rules["root"][0])
        pieces = [text]
        for step in range(MAX_STEPS):
            if not rest:
                draft.text = "".join(pieces)
                if on_draft is not None:
                    on_draft(draft.text)
                return draft
            choices = options(grammar, rest)
            if len(choices) > 1:
                choices = await self._looking_ahead(grammar, choices, deadline, counting)
            lead = shared_lead([c.text for c in choices])
            if lead:
                # Text every option starts with is forced: appended, not decoded.
                pieces.append(choices[0].text[:lead])
                choices = [dataclasses.replace(c, text=c.text[lead:]) for c in choices]
            if len(choices) == 1:
                chosen = choices[0]
            else:
                spent, chosen = await self._choose_in_stages(
                    prompt + "".join(pieces),
                    choices,
                    chain_seed(seed, chain, step),
                    deadline,
                    draft,
                    counting,
                )
                pieces.append(spent)
                draft.chose.extend(chosen.chose)
            pieces.append(chosen.text)
            rest = chosen.rest
        raise ValueError("the grammar has more choice points than a text can hold")

    async def _looking_ahead(
        self,
        grammar: Grammar,
        choices: list[Option],
        deadline: float,
        counting: dict[str, asyncio.Task[Tokens]],
    ) -> list[Option]:
        """The choices, where one's forced text is short and ends at the next choice
        point, joined with that point's options: a few forced tokens decoded in the same
        request cost less than a request of their own (one level: a request stays short).
        """
        # A word is a token at least: longer texts need no count.
        short = [bool(c.rest) and len(WORD.findall(c.text)) <= LOOKAHEAD_TOKENS for c in choices]
        if not any(short):
            return choices
        sizes = await asyncio.gather(
            *(
                self._spelled(c.text, deadline, counting)
                for c, s in zip(choices, short, strict=True)
                if s
            )
        )
        size = iter(sizes)
        joined: dict[str, Option] = {}
        for choice, is_short in zip(choices, short, strict=True):
            tokens = next(size) if is_short else None
            if tokens is not None and len(tokens) <= LOOKAHEAD_TOKENS:
                for after in options(grammar, choice.rest):
                    text = choice.text + after.text
                    joined.setdefault(text, Option(text, after.rest, choice.chose + after.chose))
            else:
                joined.setdefault(choice.text, choice)
        return list(joined.values())

    async def _choose_in_stages(
        self,
        prefix: str,
        choices: list[Option],
        seed: int,
        deadline: float,
        draft: JumpDraft,
        counting: dict[str, asyncio.Task[Tokens]],
    ) -> tuple[str, Option]:
        """A choice among options that share long stretches, made in stages.

        Two options that differ only at their ends (a clause that closes with "," or ".")
        would each be offered whole, and the model would decode every shared token. Here
        the model first picks among the options' first words (:func:`stage_prefixes`);
        what the options left share is then forced, and the next stage picks among what
        differs. Returns the text forced between stages and the option chosen (its text
        what is left of it after that).
        """
        spent = ""
        for _ in range(MAX_STEPS):
            stages = stage_prefixes([c.text for c in choices])
            groups: dict[str, list[Option]] = {}
            for stage, choice in zip(stages, choices, strict=True):
                groups.setdefault(stage, []).append(choice)
            # Staging costs a request; it pays only where a whole choice is long to decode.
            longest = max(
                len(WORD.findall(d)) for d in decisive_prefixes([c.text for c in choices])
            )
            if len(groups) in (1, len(choices)) or longest <= STAGE_WORDS:
                chosen = await self._choose(
                    prefix + spent, choices, seed, deadline, draft, counting
                )
                return spent, chosen
            staged = [Option(stage, (), ()) for stage in groups]
            picked = await self._choose(prefix + spent, staged, seed, deadline, draft, counting)
            group = groups[picked.text]
            if len(group) == 1:
                return spent, group[0]
            lead = shared_lead([c.text for c in group])
            spent += group[0].text[:lead]
            choices = [dataclasses.replace(c, text=c.text[lead:]) for c in group]
        raise ValueError("a choice did not narrow")

    async def _choose(
        self,
        prefix: str,
        choices: list[Option],
        seed: int,
        deadline: float,
        draft: JumpDraft,
        counting: dict[str, asyncio.Task[Tokens]],
    ) -> Option:
        decisive = decisive_prefixes([c.text for c in choices])
        spelled = await asyncio.gather(*(self._spelled(d, deadline, counting) for d in decisive))
        counted = all(s is not None for s in spelled)
        if counted:
            steps = tokens_to_decide([s for s in spelled if s is not None])
            allowed = tuple(sorted({t for s in spelled if s is not None for t in s}))
        else:
            steps, allowed = UNCOUNTED_TOKENS, ()
        while True:
            answer = await self._generator.choose(
                ChoiceRequest(
                    prompt=prefix,
                    choices=tuple(decisive),
                    max_tokens=steps,
                    seed=seed,
                    temperature=self._temperature,
                    timeout_s=max(0.001, deadline - time.monotonic()),
                    allowed_token_ids=allowed,
                )
            )
            draft.requests += 1
            draft.completion_tokens += answer.completion_tokens
            draft.model = draft.model or answer.model
            matching = [i for i, d in enumerate(decisive) if d.startswith(answer.text)]
            if answer.finish_reason == "stop":
                matching = [i for i in matching if decisive[i] == answer.text] or matching
            if len(matching) == 1:
                chosen = matching[0]
                logprobs = answer.token_logprobs
                if answer.finish_reason == "stop" and decisive[chosen] and logprobs:
                    # The last token ended the choice, forced once it was complete.
                    logprobs = logprobs[:-1]
                draft.token_logprobs.extend(logprobs)
                return choices[chosen]
            if not matching:
                raise LLMError(
                    f"LLM answered {answer.text[:40]!r}, none of the {len(decisive)} choices",
                    LLM_BAD_RESPONSE,
                )
            if steps >= MAX_TOKENS_PER_CHOICE:
                raise LLMError("LLM left a choice open", LLM_BAD_RESPONSE)
            # Spelled with more tokens than counted: the same seed again, further.
            steps = min(MAX_TOKENS_PER_CHOICE, steps * 2)

    async def _spelled(
        self, text: str, deadline: float, counting: dict[str, asyncio.Task[Tokens]]
    ) -> Tokens:
        """The tokens of ``text``, counted word by word (a word keeps the space before it).

        Words recur across decisions (phrase banks, feature names) where whole prefixes do
        not, so the cache answers nearly every count after the first calls. A word in
        flight is counted once for all the call's chains (``counting``); the count goes
        with the call if the call goes away.
        """
        counted = await asyncio.gather(
            *(self._word(w, deadline, counting) for w in WORD.findall(text))
        )
        if any(tokens is None for tokens in counted):
            return None
        return tuple(t for tokens in counted if tokens is not None for t in tokens)

    async def _word(
        self, word: str, deadline: float, counting: dict[str, asyncio.Task[Tokens]]
    ) -> Tokens:
        if word in self._tokens:
            self._tokens.move_to_end(word)
            return self._tokens[word]
        task = counting.get(word)
        if task is None:
            timeout_s = max(0.001, deadline - time.monotonic())
            task = counting[word] = asyncio.create_task(self._generator.tokenize(word, timeout_s))
        tokens = await task
        self._tokens[word] = tokens
        while len(self._tokens) > TOKEN_CACHE_SIZE:
            self._tokens.popitem(last=False)
        return tokens
