"""String functions and pattern matching."""

from __future__ import annotations

import pyarrow as pa
import pytest

from streamsql.errors import BindError

STR = pa.string()
INT = pa.int32()
BOOL = pa.bool_()


def test_concatenation_null_handling(ev):
    assert ev("s || '!'") == (["hello!", "World!", None, " 42 !"], STR)
    assert ev("s || a") == (["hello1", "World2", None, " 42 -7"], STR)
    assert ev("CONCAT(s, '-', a)") == (["hello-1", "World-2", None, " 42 --7"], STR)
    assert ev("CONCAT_WS('-', s, 'x', a)") == (["hello-x-1", "World-x-2", "x", " 42 -x--7"], STR)
    assert ev("CONCAT_WS(NULL, s)") == ([None] * 4, STR)
    assert ev("CONCAT_WS('-', s)") == (["hello", "World", "", " 42 "], STR)
    assert ev("CONCAT_WS('-', s, CAST(NULL AS STRING))") == (["hello", "World", "", " 42 "], STR)


def test_case_and_length(ev, one):
    assert ev("UPPER(s)") == (["HELLO", "WORLD", None, " 42 "], STR)
    assert ev("LOWER(s)") == (["hello", "world", None, " 42 "], STR)
    assert one("INITCAP('hello wORLD')") == ("Hello World", STR)
    assert ev("CHAR_LENGTH(s)") == ([5, 5, None, 4], INT)
    assert one("CHARACTER_LENGTH('héllo wörld')") == (11, INT)
    assert one("UPPER(NULL)") == (None, STR)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SUBSTRING('hello' FROM 2 FOR 3)", "ell"),
        ("SUBSTRING('hello', 2)", "ello"),
        ("SUBSTR('hello', 2, 100)", "ello"),
        ("SUBSTRING('hello', 0, 2)", "he"),
        ("SUBSTRING('hello', -3)", "llo"),
        ("SUBSTRING('hello', -3, 2)", "ll"),
        ("SUBSTRING('hello', -10, 2)", ""),
        ("SUBSTRING('hello', 9)", ""),
        ("SUBSTRING('hello', 2, -1)", None),
        ("SUBSTRING('héllo', 2, 2)", "él"),
    ],
)
def test_substring_flink_semantics(one, sql, expected):
    assert one(sql) == (expected, STR)


def test_substring_with_column_arguments(ev):
    assert ev("SUBSTRING(s, a, b)") == (["hello", "", None, ""], STR)
    assert ev("SUBSTR(s, a)") == (["hello", "orld", None, ""], STR)


def test_trim(ev, one):
    assert ev("TRIM(s)") == (["hello", "World", None, "42"], STR)
    assert ev("LTRIM(s)")[0] == ["hello", "World", None, "42 "]
    assert ev("RTRIM(s)")[0] == ["hello", "World", None, " 42"]
    assert one("TRIM(BOTH 'xy' FROM 'xyaxbyx')") == ("axb", STR)
    assert one("TRIM(LEADING 'x' FROM 'xxaxx')") == ("axx", STR)
    assert one("TRIM(TRAILING 'x' FROM 'xxaxx')") == ("xxa", STR)
    assert one("TRIM('\tx ')") == ("\tx", STR)  # only blanks, as Flink


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("REPLACE('a-b-c', '-', '+')", "a+b+c"),
        ("SPLIT_INDEX('a,b,,c', ',', 0)", "a"),
        ("SPLIT_INDEX('a,b,,c', ',', 2)", ""),
        ("SPLIT_INDEX('a,b,,c', ',', 3)", "c"),
        ("SPLIT_INDEX('a,b,,c', ',', 4)", None),
        ("SPLIT_INDEX('a,b', ',', -1)", None),
        ("SPLIT_INDEX('a::b', '::', 1)", "b"),
        ("SPLIT_INDEX(NULL, ',', 0)", None),
        ("LPAD('hi', 5, 'ab')", "abahi"),
        ("LPAD('hello', 2, '*')", "he"),
        ("RPAD('hi', 5, 'ab')", "hiaba"),
        ("RPAD('hello', 3, 'ab')", "hel"),
        ("LPAD('hi', -1, 'x')", None),
        ("LPAD('hi', 4, '')", None),
        ("REPEAT('ab', 3)", "ababab"),
        ("REPEAT('ab', -1)", ""),
        ("REVERSE('héllo')", "olléh"),
        ("LEFT('hello', 2)", "he"),
        ("LEFT('hello', -1)", ""),
        ("RIGHT('hello', 2)", "lo"),
        ("RIGHT('hello', 0)", ""),
        ("RIGHT('hello', 9)", "hello"),
    ],
)
def test_string_functions(one, sql, expected):
    assert one(sql) == (expected, STR)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("POSITION('l' IN 'hello')", 3),
        ("POSITION('z' IN 'hello')", 0),
        ("POSITION('' IN 'hello')", 1),
        ("POSITION('l' IN 'héllo')", 3),
        ("LOCATE('l', 'hello')", 3),
        ("LOCATE('l', 'hello', 4)", 4),
        ("LOCATE('l', 'hello', 5)", 0),
        ("LOCATE('l', NULL)", None),
    ],
)
def test_position(one, sql, expected):
    assert one(sql) == (expected, INT)


def test_column_parameters_group_by_value(ev):
    assert ev("LPAD(s, a, '*')") == (["h", "Wo", None, None], STR)
    assert ev("REPEAT(s, a)") == (["hello", "WorldWorld", None, ""], STR)
    assert ev("SPLIT_INDEX(s, 'l', a)") == (["", None, None, None], STR)


def test_like(ev, one):
    assert ev("s LIKE 'h%'") == ([True, False, None, False], BOOL)
    assert ev("s LIKE '_orld'") == ([False, True, None, False], BOOL)
    assert ev("s NOT LIKE '%o%'") == ([False, False, None, True], BOOL)
    assert one("'100%' LIKE '100!%' ESCAPE '!'") == (True, BOOL)
    assert one("'1000' LIKE '100!%' ESCAPE '!'") == (False, BOOL)
    assert one("'a\\b' LIKE 'a\\b'") == (True, BOOL)  # no escape character by default
    assert one("'a.b' LIKE 'a_b'") == (True, BOOL)
    assert one("'a+b' LIKE 'a+%'") == (True, BOOL)


def test_like_with_pattern_column(ev):
    batch = pa.record_batch({"s": ["abc", "xyz", "abc", None], "p": ["a%", "a%", "%c", "%"]})
    assert ev("s LIKE p", batch) == ([True, False, True, None], BOOL)


def test_regular_expressions(ev, one):
    assert ev("s SIMILAR TO '(h|W)%'") == ([True, True, None, False], BOOL)
    assert ev("REGEXP(s, 'l+')") == ([True, True, None, False], BOOL)
    assert one("REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)', 2)") == ("bar", STR)
    assert one("REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)', 1)") == ("the", STR)
    assert one("REGEXP_EXTRACT('foothebar', 'o+t')") == ("oot", STR)  # group 0 by default
    assert one("REGEXP_EXTRACT('foothebar', 'x(y)', 1)") == (None, STR)  # no match
    assert one("REGEXP_EXTRACT('foothebar', '(o)', 2)") == (None, STR)  # no such group
    assert one("REGEXP_EXTRACT('a[b]c', '\\[(.)\\]', 1)") == ("b", STR)
    assert one("REGEXP_REPLACE('a1b22c', '[0-9]+', '#')") == ("a#b#c", STR)
    assert one("REGEXP_REPLACE('ab', 'b', '\\1$1')") == ("a\\1$1", STR)  # literal text


def test_string_type_errors(ev):
    with pytest.raises(BindError, match="UPPER expects STRING, got INT"):
        ev("UPPER(5)")
    with pytest.raises(BindError, match="SUBSTRING expects an integer, got STRING"):
        ev("SUBSTRING(s, 'x')")
    with pytest.raises(BindError, match="invalid regular expression"):
        ev("REGEXP(s, '(?=x)')")


def test_long_pads(ev):
    assert ev("SUBSTRING(LPAD(s, 5000, 'ab'), 4990)")[0] == [
        "bababahello",
        "bababaWorld",
        None,
        "bababab 42 ",
    ]
    assert ev("CHAR_LENGTH(RPAD(s, 3000, 'xyz'))")[0] == [3000, 3000, None, 3000]
    assert ev("LPAD(s, 7, '*')")[0] == ["**hello", "**World", None, "*** 42 "]
