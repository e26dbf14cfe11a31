"""Pick the winning definition of each named document across layers."""

from __future__ import annotations

from engine.check.context import CheckRun, Spot
from engine.config.layers import Document, Layer


def pick_definitions(run: CheckRun, layers: list[Layer], kind: str,
                     key: str) -> dict[str, Document]:
    """Return name -> document for one kind; a higher layer's definition replaces a lower one's.

    Two definitions of one name in the same layer are an error.
    """
    chosen: dict[str, tuple[int, Document]] = {}
    for index, layer in enumerate(layers):
        for doc in layer.documents:
            if doc.kind != kind:
                continue
            name = doc.data[key]
            if name in chosen and chosen[name][0] == index:
                first = Spot(chosen[name][1], (key,))
                run.error(Spot(doc, (key,)), f"duplicate-{kind}",
                          f"{kind} '{name}' is already defined at {first.where}")
                continue
            chosen[name] = (index, doc)
    return {name: doc for name, (_, doc) in chosen.items()}
