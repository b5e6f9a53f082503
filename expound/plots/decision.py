"""One decision's plot: the waterfall of its attributions, from base value to output."""

from __future__ import annotations

from matplotlib.figure import Figure

from expound.clients.frames import responses_to_frame, to_explanation
from expound.plots.render import png_bytes, shap_figure
from expound.v1 import explain_pb2 as pb

__all__ = ["waterfall_figure", "waterfall_png"]


def waterfall_figure(response: pb.ExplainResponse, max_display: int = 10) -> Figure:
    """shap's waterfall of one answer (or an archived record's ``response``), titled with
    its model, decision and units."""
    import shap

    explanation = to_explanation(responses_to_frame([response]))[0]
    figure = shap_figure(lambda: shap.plots.waterfall(explanation, max_display, show=False))
    prediction = response.prediction
    figure.suptitle(
        f"{response.model_id}: {prediction.decision} (score {prediction.score:.3f}; "
        f"{response.attributions.units})",
        fontsize=10,
    )
    return figure


def waterfall_png(response: pb.ExplainResponse, max_display: int = 10) -> bytes:
    """:func:`waterfall_figure` as PNG bytes."""
    return png_bytes(waterfall_figure(response, max_display))
