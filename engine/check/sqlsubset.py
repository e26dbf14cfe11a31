"""Reject, at load time, the constructs of an expression that SQL cannot say (DSL §4)."""

from __future__ import annotations

from engine.check.context import CheckRun, Spot
from engine.expr.tree import (Binary, Call, Conditional, Index, ListLit, Literal, MapLit, Member,
                              Name, Node, TreeSyntaxError, Unary, parse_tree)

SQL_OPERATORS = frozenset({"==", "!=", "<", "<=", ">", ">=", "&&", "||", "in", "+", "-", "*",
                           "/"})
SQL_FUNCTIONS = frozenset({"size", "lower", "upper", "coalesce", "today", "now", "days_between"})
SQL_METHODS = frozenset({"size", "contains", "startsWith", "endsWith"})


def unsupported(node: Node) -> tuple[str, int] | None:
    """Return (construct, offset) of the first part of `node` SQL cannot say, or None."""
    if isinstance(node, (Literal, Name)):
        return None
    if isinstance(node, Member):
        return unsupported(node.target)
    if isinstance(node, Unary):
        return unsupported(node.operand)
    if isinstance(node, Binary):
        if node.op not in SQL_OPERATORS:
            return f"operator '{node.op}'", node.offset
        if node.op == "in" and not isinstance(node.right, (ListLit, Member, Name)):
            return "'in' with something other than a list", node.offset
        return unsupported(node.left) or unsupported(node.right)
    if isinstance(node, ListLit):
        for item in node.items:
            if not isinstance(item, Literal):
                return "a list item that is not a literal", item.offset
        return None
    if isinstance(node, Call):
        allowed = SQL_METHODS if node.target is not None else SQL_FUNCTIONS
        if node.function not in allowed:
            form = f".{node.function}()" if node.target is not None else f"{node.function}()"
            return f"function {form}", node.offset
        for part in ((node.target,) if node.target is not None else ()) + node.args:
            found = unsupported(part)
            if found:
                return found
        return None
    if isinstance(node, Conditional):
        return "the conditional operator '? :'", node.offset
    if isinstance(node, Index):
        return "indexing with '[ ]'", node.offset
    if isinstance(node, MapLit):
        return "a map literal", node.offset
    return type(node).__name__, node.offset  # pragma: no cover - every node kind is listed


def check_sql_subset(run: CheckRun, spot: Spot, source: str, what: str) -> bool:
    """Report the first construct of `source` that cannot run in the database."""
    try:
        tree = parse_tree(source)
    except TreeSyntaxError as exc:
        line, column = _line_col(source, exc.offset)
        run.error_at(spot, line, column, "expr-syntax", f"{what}: expression does not parse: "
                     f"{exc}")
        return False
    found = unsupported(tree)
    if found is None:
        return True
    construct, offset = found
    line, column = _line_col(source, offset)
    run.error_at(spot, line, column, "expr-not-sql",
                 f"{what}: {construct} cannot run in the database; a filter may use fields, "
                 "literals, comparisons, && || !, in [...], + - * /, size, contains, "
                 "startsWith, endsWith, lower, upper, coalesce, today(), now(), days_between, "
                 "user.id and user.roles")
    return False


def _line_col(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1
