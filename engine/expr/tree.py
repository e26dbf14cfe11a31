"""A syntax tree for CEL text, for the expressions that must also run inside the database.

The CEL library evaluates expressions but does not expose their tree; selecting records in SQL
(report filters, measure filters, rollup filters, sharing rules) needs one. This is a small
Pratt parser for CEL's expression grammar; `engine.check` uses it to reject constructs SQL
cannot say, and the storage layer translates the same tree to SQLAlchemy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<float>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
  | (?P<uint>\d+[uU])
  | (?P<int>0[xX][0-9a-fA-F]+|\d+)
  | (?P<string>[rR]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<bytes>[bB](?:'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:.,()\[\]{}])
""", re.VERBOSE)


class TreeSyntaxError(ValueError):
    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Node:
    offset: int


@dataclass(frozen=True)
class Literal(Node):
    value: Any


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Member(Node):
    target: Node
    name: str


@dataclass(frozen=True)
class Call(Node):
    function: str
    args: tuple
    target: Node | None = None  # receiver of a method call: x.contains('a')


@dataclass(frozen=True)
class Index(Node):
    target: Node
    index: Node


@dataclass(frozen=True)
class ListLit(Node):
    items: tuple


@dataclass(frozen=True)
class MapLit(Node):
    items: tuple


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Conditional(Node):
    condition: Node
    then: Node
    otherwise: Node


_BINARY = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "in": 3,
           "+": 4, "-": 4, "*": 5, "/": 5, "%": 5}


def _tokens(text: str):
    pos = 0
    out = []
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise TreeSyntaxError(f"unexpected character {text[pos]!r}", pos)
        kind = match.lastgroup
        if kind != "ws":
            out.append((kind, match.group(), pos))
        pos = match.end()
    out.append(("end", "", len(text)))
    return out


def _unquote(token: str) -> str:
    raw = token[:1] in "rR"
    body = token[1:] if raw else token
    if body[:3] in ("'''", '"""'):
        body = body[3:-3]
    else:
        body = body[1:-1]
    if raw:
        return body
    return body.encode("latin-1", "backslashreplace").decode("unicode_escape") \
        if "\\" in body else body


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self):
        return self.tokens[self.i]

    def take(self):
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, value: str):
        kind, text, pos = self.take()
        if text != value or kind == "string":
            raise TreeSyntaxError(f"expected '{value}'", pos)

    def parse(self) -> Node:
        node = self.expression()
        kind, text, pos = self.peek()
        if kind != "end":
            raise TreeSyntaxError(f"unexpected '{text}'", pos)
        return node

    def expression(self) -> Node:
        node = self.binary(1)
        kind, text, pos = self.peek()
        if text == "?" and kind == "op":
            self.take()
            then = self.expression()
            self.expect(":")
            otherwise = self.expression()
            return Conditional(pos, node, then, otherwise)
        return node

    def binary(self, min_precedence: int) -> Node:
        left = self.unary()
        while True:
            kind, text, pos = self.peek()
            precedence = _BINARY.get(text) if kind in ("op", "name") else None
            if precedence is None or precedence < min_precedence:
                return left
            self.take()
            right = self.binary(precedence + 1)
            left = Binary(pos, text, left, right)

    def unary(self) -> Node:
        kind, text, pos = self.peek()
        if kind == "op" and text in ("!", "-"):
            self.take()
            return Unary(pos, text, self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            kind, text, pos = self.peek()
            if kind == "op" and text == ".":
                self.take()
                nkind, name, npos = self.take()
                if nkind != "name":
                    raise TreeSyntaxError("expected a name after '.'", npos)
                if self.peek()[1] == "(" and self.peek()[0] == "op":
                    node = Call(npos, name, self.arguments(")"), node)
                else:
                    node = Member(npos, node, name)
            elif kind == "op" and text == "[":
                self.take()
                index = self.expression()
                self.expect("]")
                node = Index(pos, node, index)
            else:
                return node

    def arguments(self, closing: str) -> tuple:
        self.take()  # the opening bracket
        items = []
        if self.peek()[1] == closing:
            self.take()
            return ()
        while True:
            items.append(self.expression())
            kind, text, pos = self.take()
            if text == closing:
                return tuple(items)
            if text != ",":
                raise TreeSyntaxError(f"expected ',' or '{closing}'", pos)

    def primary(self) -> Node:
        kind, text, pos = self.peek()
        if kind == "int":
            self.take()
            return Literal(pos, int(text, 0))
        if kind == "uint":
            self.take()
            return Literal(pos, int(text[:-1]))
        if kind == "float":
            self.take()
            return Literal(pos, float(text))
        if kind == "string":
            self.take()
            return Literal(pos, _unquote(text))
        if kind == "bytes":
            self.take()
            return Literal(pos, _unquote(text[1:]).encode())
        if kind == "name":
            self.take()
            if text in ("true", "false"):
                return Literal(pos, text == "true")
            if text == "null":
                return Literal(pos, None)
            if self.peek()[1] == "(" and self.peek()[0] == "op":
                return Call(pos, text, self.arguments(")"))
            return Name(pos, text)
        if kind == "op" and text == "(":
            self.take()
            node = self.expression()
            self.expect(")")
            return node
        if kind == "op" and text == "[":
            return ListLit(pos, self.arguments("]"))
        if kind == "op" and text == "{":
            self.take()
            items = []
            while self.peek()[1] != "}":
                key = self.expression()
                self.expect(":")
                items.append((key, self.expression()))
                if self.peek()[1] == ",":
                    self.take()
            self.take()
            return MapLit(pos, tuple(items))
        raise TreeSyntaxError(f"unexpected '{text}'" if text else "unexpected end", pos)


def parse_tree(text: str) -> Node:
    """Parse CEL text into a tree; raise TreeSyntaxError with the offset of the problem."""
    return _Parser(text).parse()
