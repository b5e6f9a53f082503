"""Which extra a missing package belongs to, so a light install says what to install.

``pip install expound`` is the client alone; a command that needs more (``serve``,
``explain-batch``, ``plots``, a Parquet export) names the extra instead of a traceback.
"""

from __future__ import annotations

__all__ = ["NOTEBOOK_PACKAGES", "missing_extra_message"]

# Import names of the notebook extra's packages (the server extra includes them too).
NOTEBOOK_PACKAGES = frozenset({"numpy", "pandas", "pyarrow", "tqdm", "shap", "matplotlib"})


def missing_extra_message(error: ModuleNotFoundError, command: str) -> str:
    """The line to print when ``command`` needs a package this install lacks: which extra
    brings it (``serve`` always needs the server extra)."""
    top = (error.name or "").split(".")[0] or "a package"
    extra = "notebook" if top in NOTEBOOK_PACKAGES and command != "serve" else "server"
    return (
        f"{top} is not installed: this command needs the {extra} extra "
        f"(pip install 'expound[{extra}]')"
    )
