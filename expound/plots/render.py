"""Figures to PNG bytes, and the one lock around pyplot.

shap draws on pyplot's current figure, which is global state: the web face renders on
several threads, so every shap drawing holds :data:`PYPLOT_LOCK`, and takes the figures it
made off pyplot's list (a notebook's own figures stay). Figures drawn here without shap use
the object API (``matplotlib.figure.Figure``) and need no lock.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable

from matplotlib.figure import Figure

__all__ = ["PYPLOT_LOCK", "png_bytes", "shap_figure"]

PYPLOT_LOCK = threading.Lock()
DPI = 100


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes (tight bounding box, white background)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def shap_figure(draw: Callable[[], object]) -> Figure:
    """Runs a shap plotting call (with ``show=False``) on a fresh pyplot figure and returns
    the figure it drew on, detached from pyplot so the caller owns it."""
    if "matplotlib.pyplot" not in sys.modules:
        import matplotlib

        # Nothing chose a backend yet (a server, a script): render off-screen. A notebook
        # has imported pyplot with its own backend already, which stays.
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with PYPLOT_LOCK:
        before = set(plt.get_fignums())
        plt.figure()
        try:
            draw()
            drawn = plt.gcf()
        finally:
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
    return drawn
