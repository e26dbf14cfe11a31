"""The state a check run shares: the documents read, and the problems found so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.config.layers import Document
from engine.errors import Problem


@dataclass(frozen=True)
class Spot:
    """Where a value was written: a document and the path to the value in it."""

    doc: Document
    path: tuple = ()

    def __truediv__(self, key) -> "Spot":
        return Spot(self.doc, self.path + (key,))

    @property
    def where(self) -> str:
        line, column = self.doc.source.position(self.path)
        return f"{self.doc.source.display}:{line}:{column}"

    @property
    def layer(self) -> str:
        return self.doc.layer.name


@dataclass
class CheckRun:
    """Collects every problem of one check; no stage stops at the first."""

    problems: list[Problem] = field(default_factory=list)

    def error(self, spot: Spot, code: str, message: str, key: bool = False) -> None:
        self.problems.append(spot.doc.problem(spot.path, code, message, key=key))

    def error_at(self, spot: Spot, line: int, column: int, code: str, message: str) -> None:
        """Report a problem at a position inside the scalar text at `spot`."""
        source = spot.doc.source
        file_line, file_column = source.text_position(spot.path, line, column)
        self.problems.append(Problem(source.display, file_line, file_column, code, message))
