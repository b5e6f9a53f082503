"""Drafting over the chat API of the real embedded vLLM server (EXPOUND_LLM_API=chat).

The embedded Gemma 3 270M carries no chat template of its own; scripts/serve_vllm.sh
passes Gemma 3's turn format (scripts/gemma3_chat_template.jinja), and vLLM renders the
messages with it. Free texts of a 270M model are rarely faithful: the point here is that
every one goes through the gate and none is selected unverified; constrained texts carry
their grammar on the chat request and are faithful by construction.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from expound.clients.client import explain_request
from expound.generators.grammar import candidate_grammars
from expound.generators.prompting import chat_template
from expound.rankers.gate import verify_candidate
from expound.server.app import running_server
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM
from tests.support.facts_util import facts_for
from tests.support.grammar_language import language

pytestmark = pytest.mark.vllm

QUESTION = "Why was I declined?"


async def _explain_over_chat(
    settings: Settings, vllm_url: str, applicant: dict[str, Any], **update: Any
) -> tuple[Any, dict[str, Any]]:
    configured = settings.model_copy(
        update={"llm_api": "chat", "llm_base_url": vllm_url, "llm_timeout_s": 240.0, **update}
    )
    async with (
        running_server(configured) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        request = explain_request(GBM, applicant, num_candidates=4, seed=3, question=QUESTION)
        response = await stub.Explain(request, timeout=300)
        record = await stub.GetRecord(pb.GetRecordRequest(record_id=response.record_id))
    return response, json.loads(record.canonical_json)


async def test_chat_free_and_constrained_drafts_go_through_the_gate(
    settings: Settings, vllm_url: str, denied_applicant: dict[str, Any], registry: Any
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, question=QUESTION)
    styles = {p.style for p in candidate_grammars(facts, 4)}

    # Free: the model writes what it likes; the gate decides what may be selected.
    response, record = await _explain_over_chat(
        settings, vllm_url, denied_applicant, llm_mode="free", llm_max_tokens=160
    )
    drafting = record["response"]["drafting"]
    assert drafting["template_id"] == "chat.v2" and drafting["sampling"]["api"] == "chat"
    assert drafting["template_sha256"] == chat_template().sha256
    assert drafting["model"] == "gemma-3-270m", drafting.get("error")
    # vLLM answered the chat requests (no LLM_* fallback): each candidate was asked for a
    # plan style, so the ranker chooses among plans.
    assert response.fallback_reason in ("", "ALL_UNFAITHFUL"), response.fallback_reason
    drafted = [c for c in response.candidates if not c.deterministic]
    assert len(drafted) == 4 and all(c.text for c in drafted)
    assert {d["style"] for d in drafting["drafts"]} == styles
    for candidate in drafted:
        assert candidate.faithful == verify_candidate(facts, candidate.text).passed, candidate.text
    for draft in drafting["drafts"]:
        assert draft["passed"] == verify_candidate(facts, draft["text"]).passed
        assert draft["token_logprobs"] and all(lp <= 0 for lp in draft["token_logprobs"])
    if response.fallback:
        assert response.fallback_reason == "ALL_UNFAITHFUL" and response.selected.deterministic
        assert not any(d["passed"] for d in drafting["drafts"])
    else:
        assert response.selected.faithful and not response.selected.deterministic

    # Constrained: the grammar of each candidate's plan style goes on its chat request.
    response, record = await _explain_over_chat(
        settings,
        vllm_url,
        denied_applicant,
        llm_mode="constrained",
        llm_decoding="grammar",
        llm_max_tokens=320,
    )
    drafting = record["response"]["drafting"]
    assert drafting["template_id"] == "chat.v2" and drafting["sampling"]["api"] == "chat"
    assert drafting["template_sha256"] == chat_template().sha256
    assert not response.fallback, (response.fallback_reason, drafting.get("error"))
    languages = [(p.style, language(p.grammar)) for p in candidate_grammars(facts, 4)]
    assert {d["style"] for d in drafting["drafts"]} == styles
    for draft in drafting["drafts"]:
        if draft["finish_reason"] == "stop":
            assert any(
                style == draft["style"] and pattern.fullmatch(draft["text"])
                for style, pattern in languages
            ), (draft["style"], draft["text"])
        assert draft["passed"] == verify_candidate(facts, draft["text"]).passed
    assert response.selected.faithful and not response.selected.deterministic
