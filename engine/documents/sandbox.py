"""The Jinja2 environment documents are rendered in: sandboxed, autoescaped, looking templates
up through the layers' documents/ folders (highest layer first), then the engine's own.

Consultants write these templates, so they are treated as untrusted code: the immutable
sandbox refuses Python internals (`__class__`, `__globals__`...) and changes to the values a
template is given, and the two operators that can exhaust memory in one expression (`*` on a
text or list, `**`) are bounded.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from jinja2 import ChainableUndefined, ChoiceLoader, FileSystemLoader
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from engine.documents.formatting import FILTERS

BUILTIN = Path(__file__).resolve().parent / "templates"  # base.html
MAX_REPEAT = 100_000  # items a text or list may be multiplied to
MAX_EXPONENT = 1_000
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif"}


class DocumentSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with the memory-hungry operators bounded."""

    intercepted_binops = frozenset({"*", "**"})

    def unsafe_undefined(self, obj, attribute):
        # the stock sandbox returns an undefined that prints as nothing: say it instead, so an
        # attempt is a clear error naming the template line, not a silently empty cell
        raise SecurityError(f"access to attribute '{attribute}' of a {type(obj).__name__} "
                            "is unsafe and refused")

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"an exponent above {MAX_EXPONENT} is not allowed")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) \
                        and len(seq) * times > MAX_REPEAT:
                    raise SecurityError(f"repeating a text or list beyond {MAX_REPEAT} items "
                                        "is not allowed")
        return super().call_binop(context, operator, left, right)


def _blank_none(value):
    # an empty field prints as nothing, not as "None"
    return "" if value is None else value


def document_environment(folders) -> DocumentSandbox:
    """Return the environment for templates in `folders` (highest layer first)."""
    loaders = [FileSystemLoader(str(folder)) for folder in folders]
    loaders.append(FileSystemLoader(str(BUILTIN)))
    env = DocumentSandbox(loader=ChoiceLoader(loaders), autoescape=True,
                          undefined=ChainableUndefined, finalize=_blank_none,
                          auto_reload=False, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    return env


def safe_relative(name: str) -> bool:
    """Whether `name` is a path inside a folder: relative, with no `..` or backslash."""
    path = PurePosixPath(name)
    return bool(name) and "\\" not in name and not path.is_absolute() \
        and ".." not in path.parts and not name.startswith("~")


def find_asset(folders, name: str) -> Path | None:
    """Return the image file `name` in the first of `folders` holding it, or None."""
    if not safe_relative(name) or PurePosixPath(name).suffix.lower() not in IMAGE_TYPES:
        return None
    for folder in folders:
        path = Path(folder) / name
        if path.is_file():
            return path
    return None
