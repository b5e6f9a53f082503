"""TODO markers left in a model manifest.

``expound models import`` writes the string ``TODO`` (or a string starting with it) into
every field it cannot infer: descriptions, reason texts, which features are protected or
actionable. A person replaces each before the model is served; the registry refuses a
manifest that still has one and ``expound models check`` lists them. The scan runs on the
raw JSON, before schema validation, so a TODO in a typed field (a boolean, a code with a
pattern) is reported as a TODO rather than as a type error.
"""

from __future__ import annotations

from expound.models.manifest import TODO


def _item_label(index: int, item: object) -> str:
    # Features and reasons are easier to find by their name or code than by position.
    if isinstance(item, dict):
        for key in ("name", "code"):
            label = item.get(key)
            if isinstance(label, str) and label and not label.startswith(TODO):
                return label
    return str(index)


def todo_fields(document: object, path: str = "") -> list[str]:
    """The path of every string in ``document`` equal to or starting with ``TODO``.

    Args:
        document: a parsed JSON value (the manifest).
        path: the path of ``document`` itself; empty for the root.

    Returns:
        Paths such as ``features[credit_amount].description`` or ``reasons[0].text``, in
        document order.
    """
    if isinstance(document, str):
        return [path or "(manifest)"] if document.startswith(TODO) else []
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            found += todo_fields(value, f"{path}.{key}" if path else str(key))
    elif isinstance(document, list):
        for index, item in enumerate(document):
            found += todo_fields(item, f"{path}[{_item_label(index, item)}]")
    return found
