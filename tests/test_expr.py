"""Expressions: the engine's functions, evaluation and the SQL-subset syntax tree."""

import datetime as dt
from decimal import Decimal

import pytest

from engine.expr import (ENGINE_FUNCTIONS, EvaluationError, Expression, ExpressionSyntaxError,
                         parse, to_cel, unknown_functions)
from engine.expr.tree import (Binary, Call, Conditional, ListLit, Literal, Member, Name,
                              TreeSyntaxError, Unary, parse_tree)
from engine.check.sqlsubset import unsupported


def compiled(source: str) -> Expression:
    program = parse(source)
    return Expression(source, "test:1:1", frozenset(program.variables()), program)


def test_engine_functions():
    expr = compiled("days_between(a, b) == 30 && lower('AbC') == 'abc' && upper('a') == 'A' "
                    "&& coalesce(missing, 'x') == 'x' && round(2.345, 2) == 2.35 && abs(-3) == 3")
    scope = {"a": to_cel(dt.date(2024, 1, 1)), "b": to_cel(dt.date(2024, 1, 31)),
             "missing": None}
    assert expr.evaluate(scope) is True
    assert compiled("today() <= now()").evaluate({}) is True
    assert set(ENGINE_FUNCTIONS) == {"today", "now", "days_between", "lower", "upper",
                                     "coalesce", "round", "abs"}


def test_values_convert_for_cel():
    assert to_cel(Decimal("12.50")) == 12.5
    assert to_cel(dt.date(2024, 2, 3)) == dt.datetime(2024, 2, 3, tzinfo=dt.timezone.utc)
    expr = compiled("amount * probability / 100.0")
    assert expr.evaluate({"amount": to_cel(Decimal("1000")),
                          "probability": to_cel(Decimal("25"))}) == 250.0


def test_runtime_failure_is_an_evaluation_error_naming_the_expression():
    expr = compiled("amount > 1000.0")
    with pytest.raises(EvaluationError) as caught:
        expr.evaluate({"amount": None})
    assert "amount > 1000.0" in str(caught.value)
    assert expr.test({"amount": 2000.0}) is True
    assert compiled("amount").test({"amount": 1.0}) is False  # only an exact true passes


def test_syntax_errors_carry_their_column():
    with pytest.raises(ExpressionSyntaxError) as caught:
        parse("a +* b")
    assert (caught.value.line, caught.value.column) == (1, 4)


def test_unknown_functions_exclude_operators_and_builtins():
    program = parse("size(a) > 1 && a.startsWith('x') && days_between(b, c) > 0 && frob(a)")
    assert unknown_functions(program) == ["frob"]


def test_tree_shapes():
    tree = parse_tree("customer.grade in ['a', 'b'] && !(amount > 1.5e3 || x == null)")
    assert isinstance(tree, Binary) and tree.op == "&&"
    assert tree.left == Binary(15, "in", Member(9, Name(0, "customer"), "grade"),
                               ListLit(18, (Literal(19, "a"), Literal(24, "b"))))
    assert isinstance(tree.right, Unary)
    call = parse_tree("name.startsWith('Dr') && size(tags) > 0")
    assert isinstance(call.left, Call) and call.left.target == Name(0, "name")
    assert isinstance(parse_tree("a ? 1 : 2u"), Conditional)
    assert parse_tree(r"'it\'s' + r'\d' + 'line\n'").left.left.value == "it's"


@pytest.mark.parametrize("text", ["a +", "(a", "a..b", "'open", "a ? b", "[1, 2", "#"])
def test_tree_syntax_errors(text):
    with pytest.raises(TreeSyntaxError):
        parse_tree(text)


@pytest.mark.parametrize("source,construct", [
    ("stage == 'won' && amount >= 10.0", None),
    ("customer.grade in ['a', 'b'] || lower(name).contains('x')", None),
    ("'manager' in user.roles && owner.id == user.id", None),
    ("days_between(created_at, today()) < 30 && coalesce(amount, 0.0) > 1.0", None),
    ("a % 2 == 0", "operator '%'"),
    ("a ? b : c", "the conditional operator '? :'"),
    ("name.matches('x')", "function .matches()"),
    ("has(a.b)", "function has()"),
    ("tags[0] == 'a'", "indexing with '[ ]'"),
    ("a in [b, 'c']", "a list item that is not a literal"),
    ("{'a': 1}.a == 1", "a map literal"),
])
def test_sql_subset(source, construct):
    found = unsupported(parse_tree(source))
    assert (found[0] if found else None) == construct
