"""OIDs of the builtin PostgreSQL types that trio_pg has codecs for.

Values and names come from PostgreSQL's ``src/include/catalog/pg_type.dat``; builtin
OIDs are fixed across server versions. Each comment is the type's ``typname``
(array types are named after their element with a leading underscore).
"""

from __future__ import annotations

from typing import Final

BOOL: Final = 16  # bool
BYTEA: Final = 17  # bytea
CHAR: Final = 18  # char (the single-byte "char" type)
NAME: Final = 19  # name
INT8: Final = 20  # int8
INT2: Final = 21  # int2
INT4: Final = 23  # int4
TEXT: Final = 25  # text
OID: Final = 26  # oid
JSON: Final = 114  # json
CIDR: Final = 650  # cidr
FLOAT4: Final = 700  # float4
FLOAT8: Final = 701  # float8
UNKNOWN: Final = 705  # unknown
MACADDR8: Final = 774  # macaddr8
MACADDR: Final = 829  # macaddr
INET: Final = 869  # inet
BPCHAR: Final = 1042  # bpchar
VARCHAR: Final = 1043  # varchar
DATE: Final = 1082  # date
TIME: Final = 1083  # time
TIMESTAMP: Final = 1114  # timestamp
TIMESTAMPTZ: Final = 1184  # timestamptz
INTERVAL: Final = 1186  # interval
TIMETZ: Final = 1266  # timetz
NUMERIC: Final = 1700  # numeric
UUID: Final = 2950  # uuid
JSONB: Final = 3802  # jsonb

BOOL_ARRAY: Final = 1000  # _bool
BYTEA_ARRAY: Final = 1001  # _bytea
CHAR_ARRAY: Final = 1002  # _char
NAME_ARRAY: Final = 1003  # _name
INT2_ARRAY: Final = 1005  # _int2
INT4_ARRAY: Final = 1007  # _int4
TEXT_ARRAY: Final = 1009  # _text
BPCHAR_ARRAY: Final = 1014  # _bpchar
VARCHAR_ARRAY: Final = 1015  # _varchar
INT8_ARRAY: Final = 1016  # _int8
FLOAT4_ARRAY: Final = 1021  # _float4
FLOAT8_ARRAY: Final = 1022  # _float8
OID_ARRAY: Final = 1028  # _oid
MACADDR_ARRAY: Final = 1040  # _macaddr
INET_ARRAY: Final = 1041  # _inet
CIDR_ARRAY: Final = 651  # _cidr
MACADDR8_ARRAY: Final = 775  # _macaddr8
JSON_ARRAY: Final = 199  # _json
TIMESTAMP_ARRAY: Final = 1115  # _timestamp
DATE_ARRAY: Final = 1182  # _date
TIME_ARRAY: Final = 1183  # _time
TIMESTAMPTZ_ARRAY: Final = 1185  # _timestamptz
INTERVAL_ARRAY: Final = 1187  # _interval
NUMERIC_ARRAY: Final = 1231  # _numeric
TIMETZ_ARRAY: Final = 1270  # _timetz
UUID_ARRAY: Final = 2951  # _uuid
JSONB_ARRAY: Final = 3807  # _jsonb

#: (array OID, element OID) for every builtin array type above.
BUILTIN_ARRAYS: Final[tuple[tuple[int, int], ...]] = (
    (BOOL_ARRAY, BOOL),
    (BYTEA_ARRAY, BYTEA),
    (CHAR_ARRAY, CHAR),
    (NAME_ARRAY, NAME),
    (INT2_ARRAY, INT2),
    (INT4_ARRAY, INT4),
    (TEXT_ARRAY, TEXT),
    (BPCHAR_ARRAY, BPCHAR),
    (VARCHAR_ARRAY, VARCHAR),
    (INT8_ARRAY, INT8),
    (FLOAT4_ARRAY, FLOAT4),
    (FLOAT8_ARRAY, FLOAT8),
    (OID_ARRAY, OID),
    (MACADDR_ARRAY, MACADDR),
    (INET_ARRAY, INET),
    (CIDR_ARRAY, CIDR),
    (MACADDR8_ARRAY, MACADDR8),
    (JSON_ARRAY, JSON),
    (TIMESTAMP_ARRAY, TIMESTAMP),
    (DATE_ARRAY, DATE),
    (TIME_ARRAY, TIME),
    (TIMESTAMPTZ_ARRAY, TIMESTAMPTZ),
    (INTERVAL_ARRAY, INTERVAL),
    (NUMERIC_ARRAY, NUMERIC),
    (TIMETZ_ARRAY, TIMETZ),
    (UUID_ARRAY, UUID),
    (JSONB_ARRAY, JSONB),
)
