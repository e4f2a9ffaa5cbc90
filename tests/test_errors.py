"""Tests for trio_pg.errors and the generator of its SQLSTATE classes."""

from __future__ import annotations

import copy
import importlib.util
import os
import pickle
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

import trio_pg.errors as errors
from trio_pg.errors import (
    Error,
    IntegrityConstraintViolationError,
    InvalidAuthorizationSpecificationError,
    InvalidPasswordError,
    NotificationOverflowError,
    PostgresError,
    PostgresSyntaxError,
    QueryCanceledError,
    UniqueViolationError,
    exception_class_for,
)

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "trio_pg" / "errors" / "_sqlstate.py"
ERRCODES_ENV = "TRIO_PG_ERRCODES_TXT"

# Every ErrorResponse field code and the attribute it becomes (protocol-error-fields.html).
FIELD_ATTRIBUTES = {
    "S": "severity",
    "V": "severity_nonlocalized",
    "C": "sqlstate",
    "M": "message",
    "D": "detail",
    "H": "hint",
    "P": "position",
    "p": "internal_position",
    "q": "internal_query",
    "W": "where",
    "s": "schema_name",
    "t": "table_name",
    "c": "column_name",
    "d": "data_type_name",
    "n": "constraint_name",
    "F": "file",
    "L": "line",
    "R": "routine",
}

BASE_NAMES = [
    "AuthenticationError",
    "ConnectionLostError",
    "Error",
    "InterfaceError",
    "NotificationOverflowError",
    "PipelineAbortedError",
    "PostgresError",
    "ProtocolError",
    "TLSError",
]


def load_generator() -> ModuleType:
    path = ROOT / "scripts" / "gen_sqlstate.py"
    spec = importlib.util.spec_from_file_location("gen_sqlstate", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolves string annotations through sys.modules, so register first.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = load_generator()


def generated_classes() -> list[type[PostgresError]]:
    return [
        cls
        for name in errors.__all__
        if isinstance(cls := getattr(errors, name), type)
        and issubclass(cls, PostgresError)
        and cls is not PostgresError
    ]


# --- dispatch -------------------------------------------------------------------------


def test_from_fields_returns_exact_class_for_known_sqlstate() -> None:
    err = PostgresError.from_fields({"C": "23505", "M": "dup", "S": "ERROR"})
    assert type(err) is UniqueViolationError


def test_from_fields_on_subclass_returns_that_subclass() -> None:
    err = UniqueViolationError.from_fields({"C": "23505", "M": "dup", "S": "ERROR"})
    assert type(err) is UniqueViolationError
    assert err.sqlstate == "23505"


def test_from_fields_on_class_generic_returns_more_specific_class() -> None:
    err = IntegrityConstraintViolationError.from_fields({"C": "23505", "M": "dup"})
    assert type(err) is UniqueViolationError


def test_unknown_sqlstate_falls_back_to_its_class() -> None:
    err = PostgresError.from_fields({"C": "23ZZZ", "M": "new kind of violation"})
    assert type(err) is IntegrityConstraintViolationError
    # The instance keeps the code the server sent; the class keeps its generic code.
    assert err.sqlstate == "23ZZZ"
    assert IntegrityConstraintViolationError.sqlstate == "23000"


@pytest.mark.parametrize("sqlstate", ["ZZ999", "01000", "00000", "", "23"])
def test_sqlstate_of_no_error_class_gives_plain_postgres_error(sqlstate: str) -> None:
    err = PostgresError.from_fields({"C": sqlstate, "M": "odd"})
    assert type(err) is PostgresError
    assert err.sqlstate == sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("23505", UniqueViolationError),
        ("28P01", InvalidPasswordError),
        ("57014", QueryCanceledError),
        ("42601", PostgresSyntaxError),
        ("28ZZZ", InvalidAuthorizationSpecificationError),
        ("QQ000", PostgresError),
    ],
)
def test_exception_class_for_maps_sqlstate_to_class(
    sqlstate: str, expected: type[PostgresError]
) -> None:
    assert exception_class_for(sqlstate) is expected


def test_every_generated_class_is_found_by_its_sqlstate() -> None:
    classes = generated_classes()
    assert len(classes) > 200
    for cls in classes:
        assert exception_class_for(cls.sqlstate) is cls


def test_from_fields_on_unrelated_class_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"'42601' is a PostgresSyntaxError, not a Unique"):
        UniqueViolationError.from_fields({"C": "42601", "M": "syntax"})


def test_from_fields_on_user_subclass_builds_the_user_subclass() -> None:
    class AccountTakenError(UniqueViolationError):
        pass

    err = AccountTakenError.from_fields({"C": "23505", "M": "taken"})
    assert type(err) is AccountTakenError


@pytest.mark.parametrize(
    ("fields", "missing"),
    [({"M": "no code"}, "'C'"), ({"C": "23505"}, "'M'"), ({}, "'C', 'M'")],
)
def test_fields_without_sqlstate_or_message_are_rejected(
    fields: dict[str, str], missing: str
) -> None:
    with pytest.raises(ValueError, match=f"missing {missing}$"):
        PostgresError.from_fields(fields)
    with pytest.raises(ValueError, match=f"missing {missing}$"):
        PostgresError(fields)


def test_constructor_given_a_string_says_it_wants_a_mapping() -> None:
    with pytest.raises(TypeError, match="mapping of ErrorResponse fields"):
        PostgresError("boom")  # type: ignore[arg-type]


def test_constructed_error_is_caught_by_its_class_generic() -> None:
    with pytest.raises(IntegrityConstraintViolationError) as info:
        raise PostgresError.from_fields({"C": "23505", "M": "dup"})
    assert isinstance(info.value, Error)


# --- attributes -----------------------------------------------------------------------


@pytest.mark.parametrize(("code", "attribute"), sorted(FIELD_ATTRIBUTES.items()))
def test_each_field_code_sets_its_attribute(code: str, attribute: str) -> None:
    fields = {"C": "XX000", "M": "internal"} | {code: f"value of {code}"}
    err = PostgresError.from_fields(fields)
    assert getattr(err, attribute) == f"value of {code}"
    assert err.fields[code] == f"value of {code}"


def test_all_fields_together_map_to_distinct_attributes() -> None:
    fields = {code: f"value of {code}" for code in FIELD_ATTRIBUTES}
    err = PostgresError.from_fields(fields)
    assert {code: getattr(err, attr) for code, attr in FIELD_ATTRIBUTES.items()} == fields
    assert err.fields == fields


def test_fields_not_sent_are_none() -> None:
    err = PostgresError.from_fields({"C": "XX000", "M": "internal"})
    for attribute in FIELD_ATTRIBUTES.values():
        if attribute not in ("sqlstate", "message"):
            assert getattr(err, attribute) is None, attribute


def test_unknown_field_codes_are_kept_in_fields() -> None:
    err = PostgresError.from_fields({"C": "XX000", "M": "internal", "Z": "future"})
    assert err.fields["Z"] == "future"


def test_fields_are_copied_from_the_callers_mapping() -> None:
    fields = {"C": "23505", "M": "dup"}
    err = PostgresError.from_fields(fields)
    fields["M"] = "changed"
    assert err.fields["M"] == "dup"
    assert err.message == "dup"


# --- str ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "dup"),
        ({"D": "Key (id)=(1) already exists."}, "dup\nDETAIL:  Key (id)=(1) already exists."),
        ({"H": "Use another id."}, "dup\nHINT:  Use another id."),
        (
            {"H": "Use another id.", "D": "Key (id)=(1) already exists."},
            "dup\nDETAIL:  Key (id)=(1) already exists.\nHINT:  Use another id.",
        ),
    ],
)
def test_str_is_message_then_detail_and_hint_lines(extra: dict[str, str], expected: str) -> None:
    err = PostgresError.from_fields({"C": "23505", "M": "dup", "S": "ERROR"} | extra)
    assert str(err) == expected


def test_notification_overflow_error_reports_dropped_count() -> None:
    err = NotificationOverflowError(3)
    assert err.dropped == 3
    assert "3 notification(s) dropped" in str(err)
    assert "max_buffer" in str(err)


# --- pickling and copying ---------------------------------------------------------------


@pytest.mark.parametrize("sqlstate", ["23505", "23ZZZ", "ZZ999"])
def test_pickle_round_trip_keeps_class_and_fields(sqlstate: str) -> None:
    fields = {code: f"value of {code}" for code in FIELD_ATTRIBUTES} | {"C": sqlstate}
    err = PostgresError.from_fields(fields)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is type(err)
    assert clone.fields == fields
    for attribute in FIELD_ATTRIBUTES.values():
        assert getattr(clone, attribute) == getattr(err, attribute)
    assert str(clone) == str(err)


def test_copy_keeps_fields() -> None:
    err = PostgresError.from_fields({"C": "40001", "M": "retry", "D": "conflict"})
    clone = copy.copy(err)
    assert type(clone) is type(err)
    assert clone.detail == "conflict"


def test_pickle_round_trip_keeps_dropped_count() -> None:
    clone = pickle.loads(pickle.dumps(NotificationOverflowError(7)))
    assert type(clone) is NotificationOverflowError
    assert clone.dropped == 7


# --- hierarchy ------------------------------------------------------------------------


def test_invalid_password_error_is_an_invalid_authorization_specification() -> None:
    assert issubclass(InvalidPasswordError, InvalidAuthorizationSpecificationError)
    assert issubclass(InvalidPasswordError, PostgresError)
    assert InvalidPasswordError.sqlstate == "28P01"


def test_query_canceled_error_has_sqlstate_57014() -> None:
    assert QueryCanceledError.sqlstate == "57014"
    assert issubclass(QueryCanceledError, errors.OperatorInterventionError)


@pytest.mark.parametrize("name", BASE_NAMES[1:])
def test_every_trio_pg_exception_derives_from_error(name: str) -> None:
    assert issubclass(getattr(errors, name), Error)


def test_specific_classes_subclass_their_class_generic() -> None:
    for cls in generated_classes():
        (base,) = cls.__bases__
        assert issubclass(base, PostgresError)
        if cls.sqlstate.endswith("000"):
            assert base is PostgresError, cls
        else:
            assert base.sqlstate == cls.sqlstate[:2] + "000", cls


def test_asyncpg_style_names_for_well_known_codes() -> None:
    names = {cls.sqlstate: cls.__name__ for cls in generated_classes()}
    assert names["23505"] == "UniqueViolationError"
    assert names["40001"] == "SerializationFailureError"
    assert names["57014"] == "QueryCanceledError"
    assert names["28P01"] == "InvalidPasswordError"
    assert names["2202E"] == "ArraySubscriptError"


def test_package_all_lists_base_and_generated_names() -> None:
    assert len(errors.__all__) == len(set(errors.__all__))
    assert {*BASE_NAMES, "exception_class_for"} <= set(errors.__all__)
    assert {cls.__name__ for cls in generated_classes()} <= set(errors.__all__)
    for name in errors.__all__:
        assert getattr(errors, name).__module__ == "trio_pg.errors", name


# --- the generator ----------------------------------------------------------------------


def test_generated_region_is_in_sync_with_errcodes_txt(tmp_path: Path) -> None:
    errcodes = Path(os.environ.get(ERRCODES_ENV, str(gen.DEFAULT_ERRCODES)))
    if not errcodes.is_file():
        pytest.fail(
            f"{errcodes} not found: install PostgreSQL 15 (Debian: postgresql-15) or set "
            f"{ERRCODES_ENV} to the errcodes.txt the classes were generated from"
        )
    output = tmp_path / "_sqlstate.py"
    shutil.copyfile(GENERATED, output)
    assert gen.main([str(errcodes), "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == GENERATED.read_text(encoding="utf-8"), (
        "trio_pg/errors/_sqlstate.py is stale: run python scripts/gen_sqlstate.py"
    )


SAMPLE = """\
# comment
Section: Class 00 - Successful Completion

00000    S    ERRCODE_SUCCESSFUL_COMPLETION                 successful_completion
01004    W    ERRCODE_WARNING_STRING_DATA_RIGHT_TRUNCATION  string_data_right_truncation
2F000    E    ERRCODE_SQL_ROUTINE_EXCEPTION                 sql_routine_exception
2F002    E    ERRCODE_S_R_E_MODIFYING_SQL_DATA_NOT_PERMITTED modifying_sql_data_not_permitted
22001    E    ERRCODE_STRING_DATA_RIGHT_TRUNCATION          string_data_right_truncation
22000    E    ERRCODE_DATA_EXCEPTION                        data_exception
22008    E    ERRCODE_DATETIME_VALUE_OUT_OF_RANGE
22008    E    ERRCODE_DATETIME_FIELD_OVERFLOW               datetime_field_overflow
2202E    E    ERRCODE_ARRAY_ELEMENT_ERROR
38000    E    ERRCODE_EXTERNAL_ROUTINE_EXCEPTION            external_routine_exception
38002    E    ERRCODE_E_R_E_MODIFYING_SQL_DATA_NOT_PERMITTED modifying_sql_data_not_permitted
42601    E    ERRCODE_SYNTAX_ERROR                          syntax_error
77001    E    ERRCODE_ORPHAN                                orphan_code
"""


def sample_classes() -> dict[str, tuple[str, str]]:
    classes = gen.build_classes(gen.parse_errcodes(SAMPLE))
    return {cls.sqlstate: (cls.name, cls.base) for cls in classes}


def test_generator_skips_success_and_warning_codes() -> None:
    codes = {code.sqlstate for code in gen.parse_errcodes(SAMPLE)}
    assert "00000" not in codes
    assert "01004" not in codes
    assert sample_classes()["22001"][0] == "StringDataRightTruncationError"


def test_generator_names_a_repeated_sqlstate_by_its_first_condition_name() -> None:
    assert sample_classes()["22008"] == ("DatetimeFieldOverflowError", "DataExceptionError")


def test_generator_names_code_without_condition_after_its_macro() -> None:
    assert sample_classes()["2202E"] == ("ArrayElementError", "DataExceptionError")


def test_generator_prefixes_second_use_of_a_condition_name_with_its_class() -> None:
    classes = sample_classes()
    assert classes["2F002"] == ("ModifyingSqlDataNotPermittedError", "SqlRoutineExceptionError")
    assert classes["38002"] == (
        "ExternalRoutineModifyingSqlDataNotPermittedError",
        "ExternalRoutineExceptionError",
    )


def test_generator_prefixes_names_of_python_builtins_with_postgres() -> None:
    assert sample_classes()["42601"][0] == "PostgresSyntaxError"


def test_generator_puts_class_without_generic_code_under_postgres_error() -> None:
    assert sample_classes()["77001"] == ("OrphanCodeError", "PostgresError")


def test_generator_defines_each_base_before_its_subclasses() -> None:
    order = [cls.sqlstate for cls in gen.build_classes(gen.parse_errcodes(SAMPLE))]
    assert order.index("22000") < order.index("22001")


def test_generator_stops_when_no_unique_name_exists() -> None:
    # Both the plain name and the one prefixed with class 38's name are taken by 2F002
    # and 38002.
    clash = SAMPLE + "38999    E    ERRCODE_OTHER    modifying_sql_data_not_permitted\n"
    with pytest.raises(ValueError, match="no unique class name for SQLSTATE 38999"):
        gen.build_classes(gen.parse_errcodes(clash))


def test_generator_rejects_malformed_line_with_its_number() -> None:
    with pytest.raises(ValueError, match="line 2 is not in the expected format"):
        gen.parse_errcodes("# ok\n2300 E ERRCODE_SHORT short\n")


def test_generator_rewrites_only_the_marked_region() -> None:
    source = "head\n# BEGIN GENERATED x\nold\n# END GENERATED\ntail\n"
    assert gen.replace_region(source, "new\n") == (
        "head\n# BEGIN GENERATED x\nnew\n# END GENERATED\ntail\n"
    )


@pytest.mark.parametrize(
    "source",
    ["no markers\n", "# END GENERATED\n# BEGIN GENERATED\n", "# BEGIN GENERATED\n" * 2],
)
def test_generator_refuses_output_without_one_pair_of_markers(source: str) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        gen.replace_region(source, "new\n")


def test_generator_reports_missing_errcodes_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        gen.main([str(tmp_path / "missing.txt"), "--output", str(tmp_path / "out.py")])
    assert info.value.code == 2
    assert "pass the path to an errcodes.txt" in capsys.readouterr().err
