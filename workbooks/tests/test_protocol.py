"""The wire format: every parse rule and every server message builder. No database."""

from __future__ import annotations

import dataclasses
import functools
import json
from datetime import UTC, datetime

import pytest

from workbooks import protocol
from workbooks.domain.errors import Invalid, NotFound, OperationError, TooLarge
from workbooks.domain.values import (
    NEXT,
    AddSheet,
    Author,
    CellWrite,
    Change,
    Column,
    DeleteCols,
    DeleteRows,
    DeleteSheet,
    DuplicateSheet,
    InsertCols,
    InsertRows,
    Limits,
    MoveSheet,
    Overwrite,
    Ping,
    PresenceEntry,
    Rename,
    RenameSheet,
    Select,
    SetCells,
    SheetSnapshot,
    Snapshot,
    Sync,
    WorkbookSummary,
)

LIMITS = Limits()
AT = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
AT_TEXT = "2025-03-04T05:06:07.123456Z"

# Every server message, declared once: its keys and, where fixed, their types.
SHAPES = {
    "hello": {"type": str, "rev": int, "me": dict, "role": str, "presence": list},
    "change": {"type": str, "rev": int, "op": str, "by": dict, "at": str, "kind": str, "computed": list},
    "error": {"type": str, "op": (str, type(None)), "code": str, "message": str},
    "presence": {"type": str, "users": list},
    "presence_user": {"id": int, "name": str, "color": str, "sheet": (int, type(None)), "selection": list},
    "synced": {"type": str, "rev": int},
    "reload": {"type": str},
    "snapshot": {"id": int, "name": str, "rev": int, "floor": int, "role": str, "sheets": list},
    "sheet": {"id": int, "name": str, "columns": list, "rows": list, "formulas": list},
    "workbook_summary": {"id": int, "name": str, "rev": int, "role": str, "updated_at": str},
    "api_error": {"error": str, "message": str},
}
CHANGE_FIELDS = {
    "set": {"sheet", "cells", "overwritten"},
    "insert_rows": {"sheet", "before", "rows"},
    "delete_rows": {"sheet", "rows"},
    "insert_cols": {"sheet", "before", "cols"},
    "delete_cols": {"sheet", "cols"},
    "rename": {"name"},
    "add_sheet": {"sheet", "name", "before", "columns", "rows"},
    "duplicate_sheet": {"sheet", "from", "name", "before", "columns", "rows"},
    "rename_sheet": {"sheet", "name"},
    "move_sheet": {"sheet", "before"},
    "delete_sheet": {"sheet"},
}


def assert_shape(message: dict, shape: str, extra: set = frozenset()) -> None:
    declared = SHAPES[shape]
    assert set(message) == set(declared) | set(extra)
    for key, kind in declared.items():
        assert isinstance(message[key], kind), key
    json.dumps(message, allow_nan=False)  # every message is plain JSON


def parse(**content):
    return protocol.parse_client_message(content, LIMITS)


def set_op(*cells, op="o1"):
    return {"type": "set", "op": op, "cells": list(cells)}


def cell(value, row=1, col=1):
    return {"row": row, "col": col, "value": value}


# ---------------------------------------------------------------- parsing


class DecodeTest:
    def test_decode_json_object_returned(self):
        assert protocol.decode('{"type": "sync", "since": 3}', LIMITS) == {"type": "sync", "since": 3}

    def test_decode_bytes_accepted(self):
        assert protocol.decode(b'{"a": 1}', LIMITS) == {"a": 1}

    @pytest.mark.parametrize("text", ["[1, 2]", '"text"', "3", "null"])
    def test_decode_not_an_object_invalid(self, text):
        with pytest.raises(Invalid, match="JSON object"):
            protocol.decode(text, LIMITS)

    @pytest.mark.parametrize("text", ["{", "", "{'a': 1}", '{"a": }'])
    def test_decode_malformed_json_invalid(self, text):
        with pytest.raises(Invalid, match="not valid JSON"):
            protocol.decode(text, LIMITS)

    @pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
    def test_decode_nan_or_infinity_invalid(self, constant):
        with pytest.raises(Invalid):
            protocol.decode('{"type": "set", "op": "o", "cells": [{"row": 1, "col": 1, "value": ' + constant + "}]}", LIMITS)

    def test_decode_deeply_nested_invalid(self):
        with pytest.raises(Invalid):
            protocol.decode("[" * 100_000 + "]" * 100_000, LIMITS)

    def test_decode_message_at_limit_accepted_over_limit_too_large(self):
        limits = Limits(max_message_bytes=20)
        at_limit = '{"a": "' + "x" * 11 + '"}'
        assert len(at_limit) == 20
        assert protocol.decode(at_limit, limits) == {"a": "x" * 11}
        with pytest.raises(TooLarge):
            protocol.decode(at_limit + " ", limits)

    def test_decode_limit_counts_utf8_bytes_not_characters(self):
        limits = Limits(max_message_bytes=20)
        text = '{"a": "' + "é" * 6 + '"}'  # 15 characters, 21 bytes
        with pytest.raises(TooLarge):
            protocol.decode(text, limits)
        with pytest.raises(TooLarge):
            protocol.decode(text.encode(), limits)
        assert protocol.decode('{"a": "' + "é" * 5 + '"}', limits) == {"a": "é" * 5}

    # A lone surrogate or U+0000 anywhere: a value, an op id, a name, a key, nested or not.
    @pytest.mark.parametrize(
        "text",
        [
            '{"type": "set", "op": "o", "cells": [{"row": 1, "col": 1, "value": "a\\ud800b"}]}',
            '{"type": "set", "op": "\\udfff", "cells": [{"row": 1, "col": 1, "value": 1}]}',
            '{"name": "x\\u0000y"}',
            '{"type": "set", "op": "o", "cells": [{"row": 1, "col": 1, "value": "\\u0000"}]}',
            '{"type": "select", "ranges": [], "\\u0000": 1}',
            '{"op": "o\\u0000"}',
        ],
    )
    def test_decode_lone_surrogate_or_nul_anywhere_invalid(self, text):
        with pytest.raises(Invalid):
            protocol.decode(text, LIMITS)
        with pytest.raises(Invalid):
            protocol.decode(text.encode(), LIMITS)

    def test_decode_surrogate_pair_and_escaped_backslash_u0000_accepted(self):
        assert protocol.decode('{"a": "\\ud83d\\ude00"}', LIMITS) == {"a": "\U0001f600"}
        assert protocol.decode('{"a": "\\\\u0000"}', LIMITS) == {"a": "\\u0000"}  # a backslash, then "u0000"

    def test_decode_integer_past_64_bits_stays_an_integer(self):
        # An id no workbook issued: not_found later, not invalid here as a float would be.
        assert protocol.decode('{"row": 1180591620717411303424, "col": -18446744073709551617}', LIMITS) == {
            "row": 2**70,
            "col": -(2**64) - 1,
        }

    @pytest.mark.parametrize("text", ['{"a": "\\ud800", "n": 11805916207174113034241}', '{"a": NaN, "n": 11805916207174113034241}'])
    def test_decode_big_integer_with_bad_text_or_constant_still_invalid(self, text):
        with pytest.raises(Invalid):
            protocol.decode(text, LIMITS)

    def test_decode_invalid_utf8_bytes_invalid(self):
        with pytest.raises(Invalid):
            protocol.decode(b'{"a": "\xed\xa0\x80"}', LIMITS)


class BadTextTest:
    def test_bad_text_ordinary_text_none(self):
        assert protocol.bad_text("Budget 2026 \U0001f600 \u05e9\u05dc\u05d5\u05dd") is None

    @pytest.mark.parametrize("value", ["a\x00b", "\ud800", "x\udc00y"])
    def test_bad_text_nul_or_lone_surrogate_says_why(self, value):
        assert protocol.bad_text(value)


class OpIdOfTest:
    def test_op_id_of_usable_op_returned(self):
        assert protocol.op_id_of({"op": "abc"}) == "abc"

    @pytest.mark.parametrize("content", [{}, {"op": ""}, {"op": "x" * 65}, {"op": 5}, ["op"], None])
    def test_op_id_of_unusable_none(self, content):
        assert protocol.op_id_of(content) is None


class ParseOperationTest:
    def test_parse_set_cells_values_of_every_kind(self):
        values = ["text", "", 0, -3, 2.5, True, False, None]
        operation = parse(**set_op(*(cell(v, row=i + 1) for i, v in enumerate(values))))
        assert operation == SetCells("o1", tuple(CellWrite(i + 1, 1, v) for i, v in enumerate(values)))

    def test_parse_set_rev_the_sender_saw(self):
        assert parse(**set_op(cell("x")), rev=7).rev == 7
        assert parse(**set_op(cell("x")), rev=None).rev is None
        assert parse(**set_op(cell("x"))).rev is None

    @pytest.mark.parametrize("rev", [-1, "3", 1.5, True, 2**53])
    def test_parse_set_rev_not_a_revision_invalid(self, rev):
        with pytest.raises(Invalid, match="rev"):
            parse(**set_op(cell("x")), rev=rev)

    def test_parse_insert_rows_before_id_and_end(self):
        assert parse(type="insert_rows", op="o", before=4, count=2) == InsertRows("o", 4, 2)
        assert parse(type="insert_rows", op="o", before=None, count=1) == InsertRows("o", None, 1)
        assert parse(type="insert_rows", op="o", count=1) == InsertRows("o", None, 1)

    def test_parse_insert_cols_before_id(self):
        assert parse(type="insert_cols", op="o", before=3, count=5) == InsertCols("o", 3, 5)

    def test_parse_delete_rows_ids(self):
        assert parse(type="delete_rows", op="o", rows=[3, 1]) == DeleteRows("o", (3, 1))

    def test_parse_delete_cols_ids(self):
        assert parse(type="delete_cols", op="o", cols=[2]) == DeleteCols("o", (2,))

    @pytest.mark.parametrize("kind", [None, "", "rename", "SET", "hello", 5, ["set"]])
    def test_parse_unknown_type_invalid(self, kind):
        with pytest.raises(Invalid, match="unknown operation type"):
            parse(**{**set_op(cell(1)), "type": kind})

    def test_parse_op_id_1_and_64_chars_accepted(self):
        assert parse(**set_op(cell(1), op="a")).op == "a"
        assert parse(**set_op(cell(1), op="a" * 64)).op == "a" * 64

    @pytest.mark.parametrize("op", ["", "a" * 65, None, 7, True, ["a"]])
    def test_parse_op_id_empty_long_or_not_string_invalid(self, op):
        with pytest.raises(Invalid, match="op must be a string of 1 to 64"):
            parse(**set_op(cell(1), op=op))

    def test_parse_op_id_missing_invalid(self):
        with pytest.raises(Invalid, match="op must be"):
            parse(type="set", cells=[cell(1)])

    @pytest.mark.parametrize("bad", [True, False, "1", 1.0, None, [1]])
    @pytest.mark.parametrize("field", ["row", "col"])
    def test_parse_cell_id_not_int_invalid(self, field, bad):
        with pytest.raises(Invalid, match=field):
            parse(**set_op({**cell(1), field: bad}))

    @pytest.mark.parametrize("bad", [True, "2", 2.0])
    def test_parse_delete_id_not_int_invalid(self, bad):
        with pytest.raises(Invalid, match="each of rows"):
            parse(type="delete_rows", op="o", rows=[1, bad])
        with pytest.raises(Invalid, match="each of cols"):
            parse(type="delete_cols", op="o", cols=[bad])

    @pytest.mark.parametrize("bad", [True, "2", 2.5])
    def test_parse_insert_before_not_int_invalid(self, bad):
        with pytest.raises(Invalid, match="before"):
            parse(type="insert_rows", op="o", before=bad, count=1)

    @pytest.mark.parametrize("value", [{"a": 1}, [1], {}])
    def test_parse_value_object_or_list_invalid(self, value):
        with pytest.raises(Invalid, match="string, number, boolean or null"):
            parse(**set_op(cell(value)))

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
    def test_parse_value_not_finite_invalid(self, value):
        with pytest.raises(Invalid, match="finite"):
            parse(**set_op(cell(value)))

    def test_parse_value_safe_integer_bounds_accepted(self):
        assert parse(**set_op(cell(2**53 - 1))).cells[0].value == 2**53 - 1
        assert parse(**set_op(cell(-(2**53 - 1)))).cells[0].value == -(2**53 - 1)

    @pytest.mark.parametrize("value", [2**53, -(2**53), 10**30])
    def test_parse_value_integer_beyond_2_53_invalid(self, value):
        with pytest.raises(Invalid, match="2\\^53"):
            parse(**set_op(cell(value)))

    def test_parse_value_10000_chars_accepted(self):
        assert parse(**set_op(cell("x" * 10_000))).cells[0].value == "x" * 10_000

    def test_parse_value_10001_chars_too_large(self):
        with pytest.raises(TooLarge, match="10000 characters"):
            parse(**set_op(cell("x" * 10_001)))

    def test_parse_set_10000_cells_accepted(self):
        operation = parse(**set_op(*(cell(i, row=i + 1) for i in range(10_000))))
        assert len(operation.cells) == 10_000

    def test_parse_set_10001_cells_too_large(self):
        with pytest.raises(TooLarge, match="10000 cells"):
            parse(**set_op(*(cell(i, row=i + 1) for i in range(10_001))))

    @pytest.mark.parametrize("cells", [[], None, "cells", {"row": 1}])
    def test_parse_set_cells_empty_or_not_list_invalid(self, cells):
        with pytest.raises(Invalid, match="cells must be a non-empty list"):
            parse(type="set", op="o", cells=cells)

    @pytest.mark.parametrize("item", [{"row": 1, "col": 1}, [1, 1, "v"], "cell", None])
    def test_parse_set_cell_not_row_col_value_invalid(self, item):
        with pytest.raises(Invalid, match="each cell"):
            parse(type="set", op="o", cells=[item])

    @pytest.mark.parametrize("count", [0, -1, True, "2", 1.5, None])
    def test_parse_insert_count_not_positive_int_invalid(self, count):
        with pytest.raises(Invalid, match="count"):
            parse(type="insert_cols", op="o", before=None, count=count)

    def test_parse_insert_count_over_max_too_large(self):
        assert parse(type="insert_rows", op="o", count=10_000).count == 10_000
        with pytest.raises(TooLarge):
            parse(type="insert_rows", op="o", count=10_001)

    @pytest.mark.parametrize("ids", [[], None, 3, "1,2"])
    def test_parse_delete_ids_empty_or_not_list_invalid(self, ids):
        with pytest.raises(Invalid, match="non-empty list"):
            parse(type="delete_rows", op="o", rows=ids)
        with pytest.raises(Invalid, match="non-empty list"):
            parse(type="delete_cols", op="o", cols=ids)

    def test_parse_delete_more_ids_than_workbook_holds_too_large(self):
        limits = Limits(max_cols=3)
        assert protocol.parse_operation({"type": "delete_cols", "op": "o", "cols": [1, 2, 3]}, limits).cols == (1, 2, 3)
        with pytest.raises(TooLarge):
            protocol.parse_operation({"type": "delete_cols", "op": "o", "cols": [1, 2, 3, 4]}, limits)

    def test_parse_operation_refuses_sync(self):
        with pytest.raises(Invalid):
            protocol.parse_operation({"type": "sync", "since": 1}, LIMITS)


class ParseClientMessageTest:
    @pytest.mark.parametrize("since", [0, 7])
    def test_parse_sync_since_revision(self, since):
        assert parse(type="sync", since=since) == Sync(since)

    @pytest.mark.parametrize("since", [-1, None, "3", 1.0, True])
    def test_parse_sync_since_not_revision_invalid(self, since):
        with pytest.raises(Invalid, match="since"):
            parse(type="sync", since=since)

    def test_parse_sync_since_missing_invalid(self):
        with pytest.raises(Invalid, match="since"):
            parse(type="sync")

    def test_parse_select_ranges_of_ids(self):
        assert parse(type="select", ranges=[[1, 2, 3, 4], [5, 5, 5, 5]]) == Select(((1, 2, 3, 4), (5, 5, 5, 5)))

    def test_parse_select_empty_ranges_clears_selection(self):
        assert parse(type="select", ranges=[]) == Select(())

    @pytest.mark.parametrize("ranges", [None, "1,2,3,4", [[1, 2, 3]], [[1, 2, 3, 4, 5]], [[1, 2, 3, "4"]], [[1, 2, 3, True]]])
    def test_parse_select_malformed_ranges_invalid(self, ranges):
        with pytest.raises(Invalid, match="range"):
            parse(type="select", ranges=ranges)

    def test_parse_select_id_beyond_2_53_invalid(self):
        with pytest.raises(Invalid, match="range"):
            parse(type="select", ranges=[[1, 1, 1, 2**53]])

    def test_parse_select_100_ranges_accepted_101_invalid(self):
        assert len(parse(type="select", ranges=[[1, 1, 1, 1]] * 100).ranges) == 100
        with pytest.raises(Invalid):
            parse(type="select", ranges=[[1, 1, 1, 1]] * 101)

    def test_parse_ping(self):
        assert parse(type="ping") == Ping()

    def test_parse_operation_through_client_message(self):
        assert parse(type="delete_rows", op="o", rows=[1]) == DeleteRows("o", (1,))


class ParseRenameTest:
    def test_parse_rename_name_stripped_default_op(self):
        assert protocol.parse_rename({"name": "  Budget "}, LIMITS, default_op="r-1") == Rename("r-1", "Budget")

    def test_parse_rename_op_given_used(self):
        assert protocol.parse_rename({"name": "B", "op": "mine"}, LIMITS, default_op="r-1") == Rename("mine", "B")

    @pytest.mark.parametrize("name", [None, "", "   ", 5, ["a"]])
    def test_parse_rename_name_empty_or_not_string_invalid(self, name):
        with pytest.raises(Invalid, match="name"):
            protocol.parse_rename({"name": name}, LIMITS, default_op="r")

    def test_parse_rename_name_over_max_too_large(self):
        assert protocol.parse_rename({"name": "n" * 200}, LIMITS, default_op="r").name == "n" * 200
        with pytest.raises(TooLarge):
            protocol.parse_rename({"name": "n" * 201}, LIMITS, default_op="r")

    @pytest.mark.parametrize("name", ["\u200b\u200b", "\ufeff", " \u2060 ", "\u0301"])
    def test_parse_rename_name_only_invisible_characters_invalid(self, name):
        with pytest.raises(Invalid, match="visible"):
            protocol.parse_rename({"name": name}, LIMITS, default_op="r")

    @pytest.mark.parametrize("name", ["invoice\u202egnp.exe", "a\u2066b\u2069", "x\u202ay"])
    def test_parse_rename_name_with_direction_controls_invalid(self, name):
        with pytest.raises(Invalid, match="direction"):
            protocol.parse_rename({"name": name}, LIMITS, default_op="r")

    @pytest.mark.parametrize("name", ["a\tb", "a\nb", "a\x00b", "a\ud800"])
    def test_parse_rename_name_with_control_character_or_bad_text_invalid(self, name):
        with pytest.raises(Invalid):
            protocol.parse_rename({"name": name}, LIMITS, default_op="r")

    @pytest.mark.parametrize("name", ["Q3 \u05ea\u05e7\u05e6\u05d9\u05d1", "caf\u00e9", "\U0001f4ca stats", "\u0645\u064a\u0632\u0627\u0646"])
    def test_parse_rename_name_other_scripts_accepted(self, name):
        assert protocol.parse_rename({"name": name}, LIMITS, default_op="r").name == name

    @pytest.mark.parametrize("op", ["", "a" * 65, 3])
    def test_parse_rename_bad_op_invalid(self, op):
        with pytest.raises(Invalid, match="op"):
            protocol.parse_rename({"name": "n", "op": op}, LIMITS, default_op="r")

    def test_parse_rename_not_object_invalid(self):
        with pytest.raises(Invalid):
            protocol.parse_rename(["n"], LIMITS, default_op="r")


# ---------------------------------------------------------------- building


def a_change(kind, data):
    return Change(rev=12, op="op-9", by=Author(3, "ada"), at=AT, kind=kind, data=data)


class ChangeTest:
    @pytest.mark.parametrize(
        ("kind", "fields", "data"),
        [
            (
                "set",
                {"sheet": 3, "cells": (CellWrite(1, 2, "x"), CellWrite(3, 4, None))},
                {"sheet": 3, "cells": [{"row": 1, "col": 2, "value": "x"}, {"row": 3, "col": 4, "value": None}], "overwritten": []},
            ),
            (
                "set",
                {"sheet": 3, "cells": (CellWrite(1, 2, "x"),), "overwritten": (Overwrite(1, 2, Author(4, "bo"), 11, 7.5),)},
                {
                    "sheet": 3,
                    "cells": [{"row": 1, "col": 2, "value": "x"}],
                    "overwritten": [{"row": 1, "col": 2, "by": {"id": 4, "name": "bo"}, "rev": 11, "value": 7.5}],
                },
            ),
            ("insert_rows", {"sheet": 3, "before": 5, "ids": (8, 9)}, {"sheet": 3, "before": 5, "rows": [8, 9]}),
            ("insert_cols", {"sheet": 3, "before": None, "ids": (27,)}, {"sheet": 3, "before": None, "cols": [27]}),
            ("delete_rows", {"sheet": 3, "ids": (1, 2)}, {"sheet": 3, "rows": [1, 2]}),
            ("delete_cols", {"sheet": 3, "ids": (4,)}, {"sheet": 3, "cols": [4]}),
            ("rename", {"name": "Plan"}, {"name": "Plan"}),
            (
                "add_sheet",
                {"sheet": 4, "name": "Q3", "before": 3, "columns": (5, 6), "rows": [7]},
                {"sheet": 4, "name": "Q3", "before": 3, "columns": [5, 6], "rows": [7]},
            ),
            (
                "duplicate_sheet",
                {"sheet": 4, "original": 3, "name": "Q3 (copy)", "before": None, "columns": (5,), "rows": (7, 8)},
                {"sheet": 4, "from": 3, "name": "Q3 (copy)", "before": None, "columns": [5], "rows": [7, 8]},
            ),
            ("rename_sheet", {"sheet": 4, "name": "Q4"}, {"sheet": 4, "name": "Q4"}),
            ("move_sheet", {"sheet": 4, "before": None}, {"sheet": 4, "before": None}),
            ("delete_sheet", {"sheet": 4}, {"sheet": 4}),
        ],
    )
    def test_change_each_kind_carries_its_fields(self, kind, fields, data):
        assert protocol.change_data(kind, **fields) == data
        message = protocol.change(a_change(kind, protocol.change_data(kind, **fields)))
        assert_shape(message, "change", extra=CHANGE_FIELDS[kind])
        by = {"id": 3, "name": "ada"}
        assert message == {"type": "change", "rev": 12, "op": "op-9", "by": by, "at": AT_TEXT, "kind": kind, "computed": [], **data}

    def test_change_data_unknown_kind_refused(self):
        with pytest.raises(ValueError, match="unknown change kind"):
            protocol.change_data("select")

    def test_encode_compact_and_unicode_kept(self):
        text = protocol.encode(protocol.change(a_change("rename", {"name": "Zürich ✓"})))
        assert "Zürich ✓" in text
        assert ", " not in text
        assert json.loads(text)["name"] == "Zürich ✓"


class ErrorTest:
    @pytest.mark.parametrize("exc", [Invalid("bad"), NotFound("bad"), TooLarge("bad"), OperationError("bad")])
    def test_error_carries_code_message_and_op(self, exc):
        message = protocol.error(exc, "op-1")
        assert_shape(message, "error")
        assert message == {"type": "error", "op": "op-1", "code": exc.code, "message": "bad"}

    def test_error_without_op_null(self):
        message = protocol.error(Invalid("bad"))
        assert_shape(message, "error")
        assert message["op"] is None


class PresenceTest:
    def test_presence_one_entry_per_user_latest_selection_wins(self):
        entries = [
            PresenceEntry(2, "bob", "#111", ((1, 1, 1, 1),)),
            PresenceEntry(1, "ada", "#222"),
            PresenceEntry(2, "bob", "#111", ((2, 3, 4, 5),)),
        ]
        message = protocol.presence(entries)
        assert_shape(message, "presence")
        for user in message["users"]:
            assert_shape(user, "presence_user")
        assert message["users"] == [
            {"id": 1, "name": "ada", "color": "#222", "sheet": None, "selection": []},
            {"id": 2, "name": "bob", "color": "#111", "sheet": None, "selection": [[2, 3, 4, 5]]},
        ]

    def test_presence_nobody_empty_users(self):
        assert protocol.presence([]) == {"type": "presence", "users": []}


class HelloTest:
    def test_hello_me_role_and_presence_including_me(self):
        me = PresenceEntry(1, "ada", "#222")
        other = PresenceEntry(2, "bob", "#111", ((1, 1, 2, 2),))
        message = protocol.hello(rev=4, me=me, role="editor", others=[other])
        assert_shape(message, "hello")
        assert message == {
            "type": "hello",
            "rev": 4,
            "me": {"id": 1, "name": "ada", "color": "#222"},
            "role": "editor",
            "presence": [
                {"id": 1, "name": "ada", "color": "#222", "sheet": None, "selection": []},
                {"id": 2, "name": "bob", "color": "#111", "sheet": None, "selection": [[1, 1, 2, 2]]},
            ],
        }

    def test_hello_same_user_in_other_tab_listed_once(self):
        me = PresenceEntry(1, "ada", "#222")
        message = protocol.hello(rev=0, me=me, role="owner", others=[PresenceEntry(1, "ada", "#222", ((1, 1, 1, 1),))])
        assert [u["id"] for u in message["presence"]] == [1]


class SyncedTest:
    def test_synced_carries_rev(self):
        message = protocol.synced(9)
        assert_shape(message, "synced")
        assert message == {"type": "synced", "rev": 9}


class PongTest:
    def test_pong_type_only(self):
        assert protocol.pong() == {"type": "pong"}


class ReloadTest:
    def test_reload_type_only(self):
        message = protocol.reload()
        assert_shape(message, "reload")
        assert message == {"type": "reload"}


def a_sheet(sid=1, name="Sheet1", columns=(), rows=()):
    return SheetSnapshot(sid, name, columns, rows)


class SnapshotTest:
    def test_snapshot_sheets_in_order_columns_and_row_values_in_order(self):
        first = a_sheet(2, "Q2", (Column(2, "A"), Column(1, "B")), ((7, ("x", None)), (6, (None, 1.5))))
        snap = Snapshot(5, "Budget", 3, 1, "viewer", (first, a_sheet(9, "Q1")))
        message = protocol.snapshot(snap)
        assert_shape(message, "snapshot")
        assert_shape(message["sheets"][0], "sheet")
        assert message == {
            "id": 5,
            "name": "Budget",
            "rev": 3,
            "floor": 1,
            "role": "viewer",
            "sheets": [
                {
                    "id": 2,
                    "name": "Q2",
                    "columns": [{"id": 2, "title": "A"}, {"id": 1, "title": "B"}],
                    "rows": [{"id": 7, "values": ["x", None]}, {"id": 6, "values": [None, 1.5]}],
                    "formulas": [],
                },
                {"id": 9, "name": "Q1", "columns": [], "rows": [], "formulas": []},
            ],
        }

    def test_snapshot_head_only_no_rows_key(self):
        message = protocol.snapshot(Snapshot(1, "big", 0, 0, "owner", (a_sheet(1, "S", (Column(1, "A"),), None),)))
        assert message["sheets"] == [{"id": 1, "name": "S", "columns": [{"id": 1, "title": "A"}]}]


class SnapshotPiecesTest:
    def test_snapshot_pieces_rows_as_stored_same_message_as_snapshot(self):
        first = a_sheet(2, 'Q1 "draft" <b>', (Column(2, "A"), Column(1, "B")), ((7, ('x, \\"y]', None)), (6, (None, 1.5))))
        second = a_sheet(3, "Other", (Column(4, "A"),), ((8, (True,)),))
        snap = Snapshot(5, 'Q1 "draft" <b>', 3, 0, "viewer", (first, second))
        texts = [[(7, json.dumps(['x, \\"y]', None])), (6, "[null, 1.5]")], [(8, "[true]")]]
        sheets = [(dataclasses.replace(s, rows=None), t) for s, t in zip(snap.sheets, texts, strict=True)]
        head = dataclasses.replace(snap, sheets=())
        assert json.loads(b"".join(protocol.snapshot_pieces(head, sheets))) == protocol.snapshot(snap)

    def test_snapshot_pieces_a_piece_per_batch_of_rows_same_message(self):
        texts = [(i, f'[{i}, "x"]') for i in range(1, 8)]
        sheet = a_sheet(1, "S", (Column(1, "A"), Column(2, "B")), None)
        pieces = list(protocol.snapshot_pieces(Snapshot(1, "s", 2, 0, "viewer", ()), [(sheet, texts)], rows_per_piece=3))
        assert len(pieces) == 7  # the opening, the sheet's, three batches, the sheet's end, the end
        assert json.loads(b"".join(pieces))["sheets"][0]["rows"] == [{"id": i, "values": [i, "x"]} for i in range(1, 8)]

    def test_snapshot_pieces_no_rows_empty_list(self):
        sheet = a_sheet(1, "S", (Column(1, "A"),), None)
        assert json.loads(b"".join(protocol.snapshot_pieces(Snapshot(1, "e", 0, 0, "owner", ()), [(sheet, [])])))["sheets"][0]["rows"] == []


class WorkbookSummaryTest:
    def test_workbook_summary_fields_and_utc_timestamp(self):
        message = protocol.workbook_summary(WorkbookSummary(4, "Plan", 2, "editor", AT))
        assert_shape(message, "workbook_summary")
        assert message == {"id": 4, "name": "Plan", "rev": 2, "role": "editor", "updated_at": AT_TEXT}


class ApiErrorTest:
    def test_api_error_code_and_message(self):
        message = protocol.api_error("not_found", "no such workbook")
        assert_shape(message, "api_error")
        assert message == {"error": "not_found", "message": "no such workbook"}


class ParseSheetOperationTest:
    LIMITS = Limits()

    def test_grid_operation_names_its_sheet_or_none_for_the_first(self):
        assert protocol.parse_operation({"type": "delete_rows", "op": "d", "sheet": 4, "rows": [1]}, self.LIMITS).sheet == 4
        assert protocol.parse_operation({"type": "delete_rows", "op": "d", "rows": [1]}, self.LIMITS).sheet is None

    def test_sheet_operations_parsed_with_their_defaults(self):
        parse = functools.partial(protocol.parse_operation, limits=self.LIMITS)
        assert parse({"type": "add_sheet", "op": "a", "name": "Q3"}) == AddSheet("a", "Q3", None, 100, 26)
        assert parse({"type": "add_sheet", "op": "a", "name": "Q3", "before": 2, "rows": 5, "cols": 1}) == AddSheet("a", "Q3", 2, 5, 1)
        assert parse({"type": "duplicate_sheet", "op": "d", "sheet": 1, "name": "C"}) == DuplicateSheet("d", 1, "C", NEXT)
        assert parse({"type": "duplicate_sheet", "op": "d", "sheet": 1, "name": "C", "before": None}) == DuplicateSheet("d", 1, "C", None)
        assert parse({"type": "rename_sheet", "op": "r", "sheet": 1, "name": "N"}) == RenameSheet("r", 1, "N")
        assert parse({"type": "move_sheet", "op": "m", "sheet": 1, "before": None}) == MoveSheet("m", 1, None)
        assert parse({"type": "delete_sheet", "op": "x", "sheet": 1, "session": "t"}) == DeleteSheet("x", 1, session="t")

    @pytest.mark.parametrize(
        "content",
        [
            {"type": "add_sheet", "op": "a"},
            {"type": "add_sheet", "op": "a", "name": 5},
            {"type": "add_sheet", "op": "a", "name": "x\u0000"},
            {"type": "add_sheet", "op": "a", "name": "tab\there"},
            {"type": "add_sheet", "op": "a", "name": "  "},
            {"type": "add_sheet", "op": "a", "name": "Q", "rows": 0},
            {"type": "rename_sheet", "op": "r", "name": "N"},
            {"type": "rename_sheet", "op": "r", "sheet": "1", "name": "N"},
            {"type": "move_sheet", "op": "m", "sheet": 1},
            {"type": "delete_sheet", "op": "x", "sheet": True},
            {"type": "set", "op": "s", "sheet": 1.5, "cells": [{"row": 1, "col": 1, "value": 1}]},
        ],
    )
    def test_bad_sheet_operation_invalid(self, content):
        with pytest.raises(Invalid):
            protocol.parse_operation(content, self.LIMITS)

    def test_add_sheet_past_row_limit_too_large(self):
        with pytest.raises(TooLarge):
            protocol.parse_operation({"type": "add_sheet", "op": "a", "name": "Q", "rows": 100_001}, self.LIMITS)
