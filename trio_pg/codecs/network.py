"""Codecs for inet, cidr, macaddr and macaddr8.

Binary layouts (``src/backend/utils/adt/network.c``, ``mac.c``, ``mac8.c``):
``inet_send``/``cidr_send`` (both ``network_send``) write the address family
(``PGSQL_AF_INET`` = 2, ``PGSQL_AF_INET6`` = 3), the prefix length in bits, an
is-cidr flag byte, the address length (4 or 16) and the address bytes;
``network_recv`` ignores the flag and, for cidr, rejects bits set right of the
prefix. ``macaddr_send`` writes the 6 address bytes, ``macaddr8_send`` the 8.

Python mapping: inet ↔ ``ipaddress.IPv4Interface``/``IPv6Interface`` (an address
without a prefix decodes with the full-length prefix, ``/32`` or ``/128``); cidr ↔
``IPv4Network``/``IPv6Network``; macaddr and macaddr8 ↔ ``str`` such as
``"08:00:2b:01:02:03"``. Parameters may also be strings (parsed by
:mod:`ipaddress` or as hex digits with optional ``:``, ``-`` or ``.`` separators);
inet also takes a plain address or a network.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping
from typing import Final

from trio_pg.codecs import oids
from trio_pg.codecs.base import Codec, DecodeFn, EncodeFn, Format, wrong_type

__all__ = ["CODECS", "TEXT_DECODERS"]

_AF_INET: Final = 2  # PGSQL_AF_INET (src/include/utils/inet.h)
_AF_INET6: Final = 3  # PGSQL_AF_INET6

_pack_header = struct.Struct("!BBBB").pack

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _decode_inet(data: bytes) -> _IPInterface:
    # Header: family, bits, is_cidr, nb; then nb address bytes.
    if data[0] == _AF_INET:
        return ipaddress.IPv4Interface((data[4:], data[1]))
    return ipaddress.IPv6Interface((data[4:], data[1]))


def _decode_cidr(data: bytes) -> _IPNetwork:
    if data[0] == _AF_INET:
        return ipaddress.IPv4Network((data[4:], data[1]))
    return ipaddress.IPv6Network((data[4:], data[1]))


def _pack(address: _IPAddress, bits: int, is_cidr: int) -> bytes:
    packed = address.packed
    family = _AF_INET if address.version == 4 else _AF_INET6
    return _pack_header(family, bits, is_cidr, len(packed)) + packed


def _encode_inet(value: object) -> bytes:
    if isinstance(value, str):
        try:
            value = ipaddress.ip_interface(value)
        except ValueError as exc:
            raise ValueError(f"invalid address for PostgreSQL inet: {exc}") from None
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return _pack(value.ip, value.network.prefixlen, 0)
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return _pack(value, value.max_prefixlen, 0)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return _pack(value.network_address, value.prefixlen, 0)
    raise wrong_type("inet", "an ipaddress interface, address or network, or str", value)


def _encode_cidr(value: object) -> bytes:
    if isinstance(value, str | ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        try:
            value = ipaddress.ip_network(str(value))
        except ValueError as exc:
            # cidr_in and network_recv refuse host bits right of the prefix too.
            raise ValueError(f"invalid network for PostgreSQL cidr: {exc}") from None
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return _pack(value.network_address, value.prefixlen, 1)
    raise wrong_type("cidr", "ipaddress.IPv4Network, IPv6Network or str", value)


def _decode_mac(data: bytes) -> str:
    return data.hex(":")


def _mac_encoder(pg_type: str, size: int) -> EncodeFn:
    def encode(value: object) -> bytes:
        if not isinstance(value, str):
            raise wrong_type(pg_type, "str", value)
        digits = value.replace(":", "").replace("-", "").replace(".", "")
        try:
            raw = bytes.fromhex(digits)
        except ValueError:
            raw = b""
        if size == 8 and len(raw) == 6:
            # Like macaddr8_in: a 6-byte address becomes EUI-64 with FF:FE inserted.
            raw = raw[:3] + b"\xff\xfe" + raw[3:]
        if len(raw) != size:
            raise ValueError(
                f"invalid MAC address for PostgreSQL {pg_type}: {value[:60]!r} "
                f"(expected {size} hex byte pairs, e.g. 08:00:2b:01:02:03)"
            )
        return raw

    return encode


def _decode_inet_text(data: bytes) -> _IPInterface:
    return ipaddress.ip_interface(data.decode("ascii"))


def _decode_cidr_text(data: bytes) -> _IPNetwork:
    return ipaddress.ip_network(data.decode("ascii"))


def _decode_mac_text(data: bytes) -> str:
    return data.decode("ascii")


#: Binary codecs defined by this module.
CODECS: Final[tuple[Codec, ...]] = (
    Codec(oids.INET, "inet", Format.BINARY, _encode_inet, _decode_inet),
    Codec(oids.CIDR, "cidr", Format.BINARY, _encode_cidr, _decode_cidr),
    Codec(oids.MACADDR, "macaddr", Format.BINARY, _mac_encoder("macaddr", 6), _decode_mac),
    Codec(oids.MACADDR8, "macaddr8", Format.BINARY, _mac_encoder("macaddr8", 8), _decode_mac),
)

#: Text-format decoders defined by this module.
TEXT_DECODERS: Final[Mapping[int, DecodeFn]] = {
    oids.INET: _decode_inet_text,
    oids.CIDR: _decode_cidr_text,
    oids.MACADDR: _decode_mac_text,
    oids.MACADDR8: _decode_mac_text,
}
