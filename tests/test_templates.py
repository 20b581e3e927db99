"""`${...}` templates: compile once, render per request (DESIGN section 8)."""

from __future__ import annotations

import datetime
import json
import pickle
import random
import re
import time
import uuid

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from loadbench.templates import (
    BUILTINS,
    FUNCTIONS,
    Context,
    Ref,
    Template,
    TemplateError,
    compile_json,
    compile_template,
    name_problem,
    non_json_value,
    value_text,
)

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True).filter(
    lambda name: name not in BUILTINS and name not in FUNCTIONS)
LITERALS = st.text(max_size=30).filter(lambda text: "${" not in text)


def ctx(**variables) -> Context:
    return Context(variables, user=7, iteration=3, rng=random.Random(1))


# ---- literal text -------------------------------------------------------------------


@given(LITERALS)
def test_literal_text_round_trips_and_is_constant(text):
    template = compile_template(text)
    assert template.constant
    assert template.names() == frozenset()
    assert template.render(Context()) == text
    assert template.pieces == (text,)


@pytest.mark.parametrize("text", ["", "$", "{}", "$ {x}", "price: $5 {each}", "a}b", "$$"])
def test_dollar_and_braces_alone_are_literal(text):
    assert compile_template(text).render(Context()) == text


# ---- placeholders -------------------------------------------------------------------


def test_variable_and_data_column():
    template = compile_template("/api/items/${item_id}?user=${accounts.user}")
    assert not template.constant
    assert template.names() == {"item_id", "accounts.user"}
    assert template.render(ctx(item_id=5, **{"accounts.user": "bob"})) == \
        "/api/items/5?user=bob"


def test_pieces_are_literals_and_refs_in_order():
    template = compile_template("a${x}${y}b")
    assert template.pieces == ("a", Ref("var", "x", (), "${x}"), Ref("var", "y", (), "${y}"),
                               "b")


def test_whitespace_inside_braces_is_allowed():
    assert compile_template("${ token }").render(ctx(token="t")) == "t"
    assert compile_template("${randint( 1 , 1 )}").render(ctx()) == "1"


def test_names_may_hold_digits_dashes_and_unicode():
    template = compile_template("${user-id}${2fa}${clé.colonne}")
    assert template.names() == {"user-id", "2fa", "clé.colonne"}


def test_builtins_user_and_iteration():
    template = compile_template("u${user}-i${iteration}")
    assert template.names() == frozenset()
    assert template.render(Context(user=12, iteration=0)) == "u12-i0"


def test_builtins_are_read_at_render_time():
    template = compile_template("${iteration}")
    context = Context()
    context.iteration = 4
    assert template.render(context) == "4"


@pytest.mark.parametrize(
    ("value", "text"),
    [("s", "s"), (5, "5"), (-1, "-1"), (1.5, "1.5"), (True, "true"), (False, "false"),
     (None, "null"), ([1, "a"], '[1,"a"]'), ({"k": "é"}, '{"k":"é"}')])
def test_values_render_in_json_spelling(value, text):
    assert value_text(value) == text
    assert compile_template("[${v}]").render(ctx(v=value)) == f"[{text}]"


def test_unknown_variable_at_render_raises_key_error_with_the_name():
    with pytest.raises(KeyError) as caught:
        compile_template("x ${nope}").render(Context())
    assert caught.value.args == ("nope",)


@given(st.lists(st.one_of(LITERALS, NAMES.map(lambda name: ("var", name))), max_size=6),
       st.integers())
def test_render_equals_the_literals_joined_with_the_values(segments, number):
    source = "".join(s if isinstance(s, str) else "${" + s[1] + "}" for s in segments)
    refs = [s for s in segments if not isinstance(s, str)]
    # two literals side by side may form a new '${' ('$' + '{x}'): not this family
    assume(source.count("${") == len(refs))
    template = compile_template(source)
    variables = {s[1]: f"<{s[1]}:{number}>" for s in segments if not isinstance(s, str)}
    expected = "".join(s if isinstance(s, str) else variables[s[1]] for s in segments)
    assert template.render(Context(variables)) == expected
    assert template.names() == frozenset(variables)
    assert template.constant == (not variables)


# ---- functions ----------------------------------------------------------------------


def test_uuid_is_a_fresh_uuid4():
    template = compile_template("${uuid()}")
    first, second = template.render(ctx()), template.render(ctx())
    assert uuid.UUID(first).version == 4
    assert first != second


def test_randint_is_inclusive_and_draws_from_the_context_rng():
    template = compile_template("${randint(1,3)}")
    context = Context(rng=random.Random(42))
    drawn = [template.render(context) for _ in range(200)]
    assert set(drawn) == {"1", "2", "3"}
    replay = random.Random(42)
    assert drawn == [str(replay.randint(1, 3)) for _ in range(200)]


def test_randint_accepts_negative_and_equal_bounds():
    assert compile_template("${randint(-5,-5)}").render(ctx()) == "-5"
    assert compile_template("${randint(+2, 2)}").render(ctx()) == "2"


def test_counter_comes_from_the_context():
    values = iter([10, 13])
    context = Context(counter=lambda: next(values))
    template = compile_template("${counter()},${counter()}")
    assert template.render(context) == "10,13"


def test_default_counter_counts_up_from_zero():
    context = Context()
    template = compile_template("${counter()}")
    assert [template.render(context) for _ in range(3)] == ["0", "1", "2"]


def test_now_ms_is_epoch_milliseconds():
    before = time.time_ns() // 1_000_000
    value = int(compile_template("${now_ms()}").render(ctx()))
    after = time.time_ns() // 1_000_000
    assert before <= value <= after


def test_functions_are_not_variable_names():
    assert compile_template("${uuid()}${counter()}${now_ms()}${randint(1,2)}").names() == \
        frozenset()


# ---- syntax errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [("${", r"unterminated placeholder '\$\{' in '\$\{': close it with '\}'"),
     ("/a/${id", r"unterminated placeholder '\$\{id' in '/a/\$\{id'"),
     ("${}", r"empty placeholder '\$\{\}' in '\$\{\}'; expected a name \(token, "
             r"source.column\), a builtin \(user, iteration\) or a function call"),
     ("${  }", "empty placeholder"),
     ("${uuidd()}", r"^unknown function 'uuidd\(\)' in '\$\{uuidd\(\)\}'; known: uuid\(\), "
                    r"randint\(a,b\), counter\(\), now_ms\(\)$"),
     ("${uuid}", r"uuid is a function, write \$\{uuid\(\)\}"),
     ("${randint(1)}", r"randint takes two integers, randint\(a,b\) with a <= b"),
     ("${randint(1,2,3)}", "randint takes two integers"),
     ("${randint()}", "randint takes two integers"),
     ("${randint(5,1)}", r"randint\(5,1\) needs a <= b, e.g. randint\(1,5\)"),
     ("${randint(2,1)}", r"randint\(2,1\) needs a <= b"),
     ("${randint(a,2)}", r"argument 'a' of randint\(\) is not an integer"),
     ("${randint(1.5,2)}", r"argument '1.5' of randint\(\) is not an integer"),
     ("${uuid(1)}", r"uuid\(\) takes no arguments"),
     ("${now_ms(x)}", "not an integer"),
     ("${a.b.c}", r"bad placeholder '\$\{a.b.c\}'"),
     ("${a b}", "bad placeholder"),
     ("${a${b}}", r"bad placeholder '\$\{a\$\{b\}'"),
     ("${.x}", "bad placeholder"),
     ("${x.}", "bad placeholder")])
def test_syntax_errors_say_what_and_what_is_valid(source, message):
    with pytest.raises(TemplateError, match=message) as caught:
        compile_template(source)
    assert "\n" not in str(caught.value)


def test_error_quotes_a_long_template_shortened_on_one_line():
    with pytest.raises(TemplateError) as caught:
        compile_template("line\n" * 40 + "${")
    message = str(caught.value)
    assert "\n" not in message and "..." in message and len(message) < 200


def test_a_template_is_text():
    with pytest.raises(TemplateError, match="a template is text, got int 5"):
        compile_template(5)  # type: ignore[arg-type]


def test_template_error_is_a_value_error():
    assert issubclass(TemplateError, ValueError)


# ---- names --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["token", "item_id", "user-id", "x1", "_"])
def test_valid_variable_names(name):
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "message"),
    [("a.b", "is not a variable name"), ("", "is not a variable name"),
     ("a b", "is not a variable name"), (5, "is not a variable name"),
     ("user", r"is a builtin \(\$\{user\}\)"), ("iteration", "is a builtin"),
     ("uuid", r"is a function \(\$\{uuid\(\)\}\)"), ("now_ms", "is a function")])
def test_invalid_variable_names(name, message):
    assert re.search(message, name_problem(name))


# ---- JSON bodies --------------------------------------------------------------------


def test_exact_placeholder_keeps_the_value_type():
    body = compile_json({"id": "${item_id}", "tags": "${tags}", "ok": "${flag}",
                         "none": "${nothing}", "u": "${user}", "n": "${randint(3,3)}"})
    rendered = body.render(ctx(item_id=5, tags=["a"], flag=True, nothing=None))
    assert rendered == {"id": 5, "tags": ["a"], "ok": True, "none": None, "u": 7, "n": 3}
    assert json.dumps(rendered) == \
        '{"id": 5, "tags": ["a"], "ok": true, "none": null, "u": 7, "n": 3}'


def test_a_string_with_more_than_one_placeholder_stays_a_string():
    body = compile_json({"a": "item-${item_id}", "b": " ${item_id}", "c": "${item_id}${x}"})
    assert body.render(ctx(item_id=5, x=1)) == {"a": "item-5", "b": " 5", "c": "51"}


def test_data_values_stay_strings_and_uuid_is_a_string():
    body = compile_json({"user": "${accounts.user}", "key": "${uuid()}"})
    rendered = body.render(ctx(**{"accounts.user": "007"}))
    assert rendered["user"] == "007"
    assert isinstance(rendered["key"], str)


def test_keys_are_templates_and_render_as_text():
    body = compile_json({"k${user}": 1, "${user}": 2, "plain": 3})
    assert body.render(ctx()) == {"k7": 1, "7": 2, "plain": 3}


def test_nested_lists_and_objects():
    body = compile_json({"a": [1, "${x}", {"b": ["${y}", "c"]}], "d": {"e": True}})
    assert body.names() == {"x", "y"}
    assert body.render(ctx(x=1, y="z")) == {"a": [1, 1, {"b": ["z", "c"]}], "d": {"e": True}}


def test_top_level_scalars_and_strings():
    assert compile_json("${x}").render(ctx(x=[1])) == [1]
    assert compile_json("a${x}").render(ctx(x=1)) == "a1"
    assert compile_json(5).render(ctx()) == 5
    assert compile_json(None).constant


def test_constant_body_renders_its_source_itself():
    source = {"a": [1, {"b": "c"}], "n": None}
    body = compile_json(source)
    assert body.constant
    assert body.render(ctx()) is source
    assert body.names() == frozenset()


def test_names_exclude_builtins_and_functions():
    body = compile_json({"a": "${user}", "b": "${uuid()}", "c": "${iteration}-${t}"})
    assert body.names() == {"t"}
    assert not body.constant


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | LITERALS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(LITERALS, children, max_size=4),
    max_leaves=20)


@given(JSON_VALUES)
def test_json_without_placeholders_is_constant_and_round_trips(value):
    body = compile_json(value)
    assert body.constant
    assert body.render(Context()) == value


@given(JSON_VALUES, st.integers())
def test_json_with_one_exact_placeholder_puts_the_typed_value_there(value, number):
    body = compile_json({"wrapped": value, "slot": "${v}"})
    assert body.render(ctx(v=number)) == {"wrapped": value, "slot": number}


@pytest.mark.parametrize(
    ("value", "message"),
    [({"a": [1, {"b": datetime.date(2024, 1, 1)}]},
      r"^json body at \$.a\[1\].b: datetime.date\(2024, 1, 1\) \(date\) is not a JSON value; "
      r"use text, numbers, true/false, null, lists and objects \(quote dates\)$"),
     ({"x y": ["${uuidd()}"]},
      r"^json body at \$\[\"x y\"\]\[0\]: unknown function 'uuidd\(\)'"),
     ({"${": 1}, r"^json body at \$: unterminated placeholder"),
     ({(1, 2): 3}, r"json body at \$: key \(1, 2\) is not text"),
     ({1: {2}}, r"json body at \$\[\"1\"\]: \{2\} \(set\)")])
def test_json_errors_name_the_place_in_the_body(value, message):
    with pytest.raises(TemplateError, match=message):
        compile_json(value)


def test_non_json_value_finds_the_first_bad_place():
    assert non_json_value({"a": [1, "x", None, 1.5, True, {"b": {}}]}) is None
    assert non_json_value({"a": [1, b"x"]}) == ("$.a[1]", b"x")
    assert non_json_value(datetime.date(2024, 1, 1), "$.v") == ("$.v", datetime.date(2024, 1, 1))


# ---- pickling (compiled objects travel in a LoadPlan) -------------------------------


@pytest.mark.parametrize("source", ["plain", "/a/${x}/${user}-${iteration}",
                                    "${randint(1,9)}-${counter()}-${randint(-3,3)}"])
def test_templates_pickle_and_render_the_same(source):
    template = compile_template(source)
    copy = pickle.loads(pickle.dumps(template))
    assert copy == template
    assert isinstance(copy, Template)
    assert copy.render(Context({"x": 1}, rng=random.Random(3))) == \
        template.render(Context({"x": 1}, rng=random.Random(3)))


def test_json_templates_pickle_and_render_the_same():
    body = compile_json({"a": "${x}", "k${user}": ["${y}-z", {"c": 1}], "d": [1, 2]})
    copy = pickle.loads(pickle.dumps(body))
    assert copy == body
    assert copy.render(ctx(x=1, y=2)) == body.render(ctx(x=1, y=2))
