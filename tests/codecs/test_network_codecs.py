"""inet, cidr, macaddr, macaddr8: vectors and errors.

network_send (src/backend/utils/adt/network.c) writes family (PGSQL_AF_INET = 2,
PGSQL_AF_INET6 = 3), prefix bits, is_cidr, address length, address bytes;
macaddr_send (mac.c) and macaddr8_send (mac8.c) write the raw 6 or 8 bytes.
"""

from __future__ import annotations

import ipaddress

import pytest

from trio_pg.codecs import CodecRegistry, Format
from trio_pg.codecs import oids as o

REGISTRY = CodecRegistry.builtin()


def encode(oid: int, value: object) -> bytes:
    fmt, encoder = REGISTRY.param_encoder(oid)
    assert fmt is Format.BINARY
    return encoder(value)


def decode(oid: int, data: bytes) -> object:
    fmt, decoder = REGISTRY.result_decoder(oid)
    assert fmt is Format.BINARY
    return decoder(data)


VECTORS = [
    (o.INET, ipaddress.ip_interface("192.168.0.1/24"), "02180004" "c0a80001"),
    (o.INET, ipaddress.ip_interface("10.1.2.3"), "02200004" "0a010203"),
    (o.INET, ipaddress.ip_interface("::1"), "03800010" + "00" * 15 + "01"),
    (o.INET, ipaddress.ip_interface("2001:db8::5/64"), "03400010" "20010db8" + "00" * 11 + "05"),
    (o.CIDR, ipaddress.ip_network("10.0.0.0/8"), "02080104" "0a000000"),
    (o.CIDR, ipaddress.ip_network("2001:db8::/32"), "03200110" "20010db8" + "00" * 12),
    (o.MACADDR, "08:00:2b:01:02:03", "08002b010203"),
    (o.MACADDR8, "08:00:2b:01:02:03:04:05", "08002b0102030405"),
]


@pytest.mark.parametrize(("oid", "value", "hexdata"), VECTORS)
def test_network_encodes_to_send_format(oid: int, value: object, hexdata: str) -> None:
    assert encode(oid, value).hex() == hexdata


@pytest.mark.parametrize(("oid", "value", "hexdata"), VECTORS)
def test_network_decodes_send_format(oid: int, value: object, hexdata: str) -> None:
    decoded = decode(oid, bytes.fromhex(hexdata))
    assert decoded == value
    assert type(decoded) is type(value)


def test_inet_accepts_str_address_and_network() -> None:
    assert encode(o.INET, "192.168.0.1/24").hex() == "02180004c0a80001"
    assert encode(o.INET, ipaddress.ip_address("10.1.2.3")).hex() == "022000040a010203"
    assert encode(o.INET, ipaddress.ip_network("10.0.0.0/8")).hex() == "020800040a000000"


def test_cidr_accepts_str_and_interface_without_host_bits() -> None:
    assert encode(o.CIDR, "10.0.0.0/8").hex() == "020801040a000000"
    assert encode(o.CIDR, ipaddress.ip_interface("10.0.0.0/8")).hex() == "020801040a000000"


def test_cidr_rejects_host_bits_like_cidr_recv() -> None:
    with pytest.raises(ValueError, match=r"cidr.*host bits"):
        encode(o.CIDR, "10.0.0.1/8")


def test_inet_rejects_malformed_string() -> None:
    with pytest.raises(ValueError, match="inet"):
        encode(o.INET, "300.1.1.1")


@pytest.mark.parametrize(
    "text", ["08-00-2b-01-02-03", "08002b:010203", "0800.2b01.0203", "08002B010203"]
)
def test_macaddr_accepts_postgres_input_spellings(text: str) -> None:
    assert encode(o.MACADDR, text).hex() == "08002b010203"


def test_macaddr8_widens_six_byte_address_like_macaddr8_in() -> None:
    assert encode(o.MACADDR8, "08:00:2b:01:02:03").hex() == "08002bfffe010203"


@pytest.mark.parametrize("text", ["08:00:2b:01:02", "zz:00:2b:01:02:03", ""])
def test_macaddr_rejects_malformed_address(text: str) -> None:
    with pytest.raises(ValueError, match="macaddr"):
        encode(o.MACADDR, text)


@pytest.mark.parametrize(
    ("oid", "pg_type"), [(o.INET, "inet"), (o.CIDR, "cidr"), (o.MACADDR, "macaddr")]
)
def test_network_wrong_python_type_names_both_types(oid: int, pg_type: str) -> None:
    with pytest.raises(TypeError) as info:
        encode(oid, 12345)
    assert pg_type in str(info.value)
    assert "int" in str(info.value)
