"""An adverse action notice rendered from an archived record, as a standalone HTML page.

Everything shown comes from the record's canonical JSON, the text that its proof covers:
the decision, the principal reasons in plain language, the selected explanation, the date,
the model and its version, and a verification handle (record id, position in the log, the
signed checkpoint's log, size and root) with which anyone holding the public key can check
the record with ``expound archive verify``.
"""

from __future__ import annotations

import json
from html import escape

from expound.v1 import explain_pb2 as pb

_STYLE = (
    "body{font-family:Georgia,serif;max-width:42em;margin:2em auto;line-height:1.5}"
    "h1{font-size:1.4em}.handle{font-family:monospace;font-size:.85em;word-break:break-all}"
)


def render_notice(record: pb.Record) -> str:
    """The notice for ``record`` (fetched with ``include_proof`` for the handle).

    Raises:
        ValueError: If the record is a tombstone or its payload has expired.
    """
    if record.kind != "record" or record.expired or not record.canonical_json:
        raise ValueError(f"record {record.record_id} holds no decision to give notice of")
    body = json.loads(record.canonical_json)
    response = body["response"]
    prediction = response["prediction"]
    reasons = response.get("principal_reasons", [])
    reason_items = "".join(
        f"<li>{escape(reason['text'])} <small>({escape(reason['code'])})</small></li>"
        for reason in reasons
    )
    if prediction.get("adverse"):
        title = "Notice of action taken on your application"
        reason_block = (
            f"<p>The principal reasons for our decision are:</p><ol>{reason_items}</ol>"
            if reason_items
            else "<p>No principal reasons were recorded.</p>"
        )
    else:
        title = "Decision on your application"
        reason_block = ""
    handle = [f"record {escape(record.record_id)}", f"sha256 {escape(record.sha256)}"]
    if record.HasField("proof"):
        checkpoint = record.proof.checkpoint
        handle += [
            f"leaf {record.proof.leaf_index} of log {escape(checkpoint.log_id)} "
            f"at size {checkpoint.size}",
            f"root {bytes(checkpoint.root_hash).hex()}",
            f"signed {escape(checkpoint.timestamp)}",
        ]
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>\n"
        f"<h1>{escape(title)}</h1>\n"
        f"<p>Date: {escape(body['created_at'][:10])}<br>"
        f"Decision reference: {escape(response.get('decision_id') or record.record_id)}</p>\n"
        f"<p>Decision: <strong>{escape(prediction['decision'])}</strong></p>\n"
        f"{reason_block}\n"
        f"<h2>In plain words</h2><p>{escape(response['selected']['text'])}</p>\n"
        f"<p>Model: {escape(response['model_id'])} version {escape(response['model_version'])}"
        "</p>\n"
        f'<h2>Verification</h2><p class="handle">{"<br>".join(handle)}</p>\n'
        "</body></html>\n"
    )
