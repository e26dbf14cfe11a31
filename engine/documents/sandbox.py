"""The Jinja2 environment documents are rendered in: sandboxed, autoescaped, looking templates
up through the layers' documents/ folders (highest layer first), then the engine's own.

Consultants write these templates, so they are treated as untrusted code: the immutable
sandbox refuses Python internals (`__class__`, `__globals__`...) and changes to the values a
template is given. What could exhaust memory or time is bounded: the operators (`*`, `**`,
`+`, `%` on a text), the widths of string formatting and the filters that grow a text, and a
render has a deadline (checked on every attribute, call, operator and loop step) and a
largest output. A template or image is only read inside its documents/ folder: a symlink
leading out of it is not followed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import time
from pathlib import Path, PurePosixPath

from jinja2 import ChainableUndefined, ChoiceLoader, FileSystemLoader, TemplateNotFound
from jinja2 import filters as jinja_filters
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import (ImmutableSandboxedEnvironment, SandboxedEscapeFormatter,
                            SandboxedFormatter, SecurityError)
from markupsafe import Markup

from engine.documents.formatting import FILTERS

BUILTIN = Path(__file__).resolve().parent / "templates"  # base.html
MAX_REPEAT = 100_000  # items a text or list may be multiplied to
MAX_EXPONENT = 1_000
MAX_TEXT = 1_000_000  # characters one text (or items one list) a template makes may have
MAX_BITS = 100_000  # bits a number a template computes may have
MAX_OUTPUT = 20_000_000  # characters a rendered document may have
RENDER_SECONDS = 20.0  # a render taking longer is stopped
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline",
                                                                          default=None)
_NUMBERS = re.compile(r"\d+")
# a printf conversion: %[(key)][flags][width][.precision][length]type
_PERCENT = re.compile(r"%(?:\([^)]*\))?([-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?)[hlL]?[a-zA-Z%]")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif"}


def too_big(what: str, limit: int = MAX_TEXT):
    return SecurityError(f"{what} beyond {limit} characters is not allowed")


def tick() -> None:
    """Stop the render once its deadline has passed."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise SecurityError(f"the document took longer than {RENDER_SECONDS:g} seconds to "
                            "render and was stopped")


def check_spec(spec) -> None:
    """Refuse a format width or precision that would make a text beyond MAX_TEXT."""
    for digits in _NUMBERS.findall(str(spec)):
        if len(digits) > 7 or int(digits) > MAX_TEXT:
            raise too_big("a formatted text")


def check_percent(fmt: str, args) -> None:
    """Refuse `fmt % args` (printf formatting) making a text beyond MAX_TEXT."""
    specs = _PERCENT.findall(fmt)
    for spec in specs:
        check_spec(spec)
    if any("*" in spec for spec in specs):  # a width or precision given as an argument
        for arg in (args if isinstance(args, tuple) else (args,)):
            if isinstance(arg, int) and abs(arg) > MAX_TEXT:
                raise too_big("a formatted text")


def check_size(value, what: str = "a text"):
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_TEXT:
        raise too_big(what)
    return value


class _BoundedFormatting:
    def format_field(self, value, format_spec):
        check_spec(format_spec)
        return check_size(super().format_field(value, format_spec), "a formatted text")


class _Formatter(_BoundedFormatting, SandboxedFormatter):
    pass


class _EscapeFormatter(_BoundedFormatting, SandboxedEscapeFormatter):
    pass


def guard_iteration(iterable):
    """A loop's items, checking the render's deadline at each."""
    for item in iterable:
        tick()
        yield item


class _GuardedCodeGenerator(CodeGenerator):
    """Compiles `{% for x in items %}` as a loop over guard_iteration(items), and `a ~ b`
    (which Jinja compiles to a join the sandbox never sees) as a join whose size is checked:
    `{% set s = s ~ s %}` repeated would otherwise double a text past any memory."""

    def visit_Concat(self, node, frame):
        self.write("environment.check_join(")
        super().visit_Concat(node, frame)
        self.write(")")

    def visit_For(self, node, frame):
        self._loop_iters = getattr(self, "_loop_iters", set()) | {id(node.iter)}
        super().visit_For(node, frame)

    def visit(self, node, *args, **kwargs):
        if id(node) in getattr(self, "_loop_iters", ()):
            self.write("environment.guard_iteration(")
            super().visit(node, *args, **kwargs)
            self.write(")")
            return None
        return super().visit(node, *args, **kwargs)


def _grown(name: str, estimate):
    """Bound a filter that grows a text: refuse before when `estimate(value, *args)` is too
    big, and after if the result is."""
    original = jinja_filters.FILTERS[name]
    passes = getattr(original, "jinja_pass_arg", None) is not None

    @functools.wraps(original)
    def bounded(*args, **kwargs):
        tick()
        value_args = args[1:] if passes else args
        try:
            size = estimate(*value_args, **kwargs)
        except (TypeError, ValueError, AttributeError):
            size = 0  # the filter itself tells the mistake
        if size > MAX_TEXT:
            raise too_big(f"the '{name}' filter making a text")
        return check_size(original(*args, **kwargs), f"the '{name}' filter making a text")
    return bounded


def _replacing(s, old, new, count=None):
    s, old, new = str(s), str(old), str(new)
    times = (len(s) + 1) if old == "" else s.count(old)
    if count is not None and int(count) >= 0:
        times = min(times, int(count))
    return len(s) + times * max(0, len(new) - len(old))


def _indenting(s, width=4, first=False, blank=False):
    s = str(s)
    return len(s) + (s.count("\n") + 1) * (len(width) if isinstance(width, str) else int(width))


def _wrapping(s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    s = str(s)
    lines = len(s) // max(int(width), 1) + s.count("\n") + 1
    return len(s) + lines * len(str(wrapstring or "\n"))


def _joining(value, d="", attribute=None):
    items = list(value) if not isinstance(value, (str, list, tuple)) else value
    size, sep = 0, len(str(d))
    for item in items:
        size += len(str(item)) + sep
        if size > MAX_TEXT:
            break
    return size


def _formatting(value, *args, **kwargs):
    check_percent(str(value), tuple(args) or kwargs)
    return 0


GROWN_FILTERS = {
    "center": lambda value, width=80: max(len(str(value)), int(width)),
    "replace": _replacing, "indent": _indenting, "wordwrap": _wrapping, "join": _joining,
    "format": _formatting,
    "truncate": lambda s, length=255, *a, **k: 0,  # never longer than its text: checked after
}


class DocumentSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with what can exhaust memory or time bounded."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _GuardedCodeGenerator
    guard_iteration = staticmethod(guard_iteration)
    check_join = staticmethod(lambda value: check_size(value, "a joined text"))

    def getattr(self, obj, attribute):
        tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        tick()
        return super().getitem(obj, argument)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (the stock signature)
        tick()
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value):
        # the stock wrapper, with the bounded formatters
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        f_self = value.__self__
        formatter = _EscapeFormatter(self, escape=f_self.escape) \
            if isinstance(f_self, Markup) else _Formatter(self)
        is_format_map = value.__name__ == "format_map"

        @functools.wraps(value)
        def bounded(*args, **kwargs):
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            return check_size(type(f_self)(formatter.vformat(f_self, args, kwargs)),
                              "a formatted text")
        return bounded

    def unsafe_undefined(self, obj, attribute):
        # the stock sandbox returns an undefined that prints as nothing: say it instead, so an
        # attempt is a clear error naming the template line, not a silently empty cell
        raise SecurityError(f"access to attribute '{attribute}' of a {type(obj).__name__} "
                            "is unsafe and refused")

    def call_binop(self, context, operator, left, right):
        tick()
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"an exponent above {MAX_EXPONENT} is not allowed")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) \
                and right > 0 and left.bit_length() * right > MAX_BITS:
            raise SecurityError(f"a power beyond {MAX_BITS} bits is not allowed")
        if operator == "*" and isinstance(left, int) and isinstance(right, int) \
                and left.bit_length() + right.bit_length() > MAX_BITS:
            raise SecurityError(f"a product beyond {MAX_BITS} bits is not allowed")
        if operator == "%" and isinstance(left, str):
            check_percent(left, right)
            return check_size(super().call_binop(context, operator, left, right),
                              "a formatted text")
        if operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)) \
                    and len(left) + len(right) > MAX_TEXT:
                raise too_big("joining texts or lists")
            if isinstance(left, int) and isinstance(right, int) \
                    and max(left.bit_length(), right.bit_length()) > MAX_BITS:
                raise SecurityError(f"a sum beyond {MAX_BITS} bits is not allowed")
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


class FolderLoader(FileSystemLoader):
    """A FileSystemLoader of one folder that refuses a template whose real path (its
    symlinks followed) is outside the folder."""

    def get_source(self, environment, template):
        contents, filename, uptodate = super().get_source(environment, template)
        if not inside(filename, self.searchpath[0]):
            raise TemplateNotFound(template)
        return contents, filename, uptodate


def inside(path, folder) -> bool:
    """Whether `path`, its symlinks followed, is in `folder` (its symlinks followed too)."""
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


@contextlib.contextmanager
def render_deadline(seconds: float | None = None):
    """Bound the renders inside the block to `seconds` (default RENDER_SECONDS, read when
    called; see tick)."""
    token = _deadline.set(time.monotonic() + (RENDER_SECONDS if seconds is None else seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def render_bounded(template, context: dict) -> str:
    """Render `template` within the deadline and the largest output."""
    parts, size = [], 0
    with render_deadline():
        for part in template.generate(context):
            size += len(part)
            if size > MAX_OUTPUT:
                raise too_big("a document", MAX_OUTPUT)
            parts.append(part)
    return "".join(parts)


def document_environment(folders) -> DocumentSandbox:
    """Return the environment for templates in `folders` (highest layer first)."""
    loaders = [FolderLoader(str(folder)) for folder in folders]
    loaders.append(FolderLoader(str(BUILTIN)))
    env = DocumentSandbox(loader=ChoiceLoader(loaders), autoescape=True,
                          undefined=ChainableUndefined, finalize=_blank_none,
                          auto_reload=False, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    env.filters.update({name: _grown(name, estimate) for name, estimate in GROWN_FILTERS.items()})
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
            # a symlink leading out of the folder is not followed (nor looked past)
            return path if inside(path, folder) else None
    return None
