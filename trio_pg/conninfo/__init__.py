"""Connection settings: libpq connection strings, ``PG*`` environment variables, the
password file and service files, resolved into one validated :class:`ConnectParams`.

Pure: standard library only, no I/O beyond reading those files. Behaviour follows
libpq (``libpq-connect.html``, ``libpq-envars.html``, ``libpq-pgpass.html``,
``libpq-pgservice.html``), with these differences:

* ``database`` is accepted as an alias of ``dbname``, and ``params`` values may be
  ``int``, ``float``, ``bool`` or paths.
* libpq keywords trio_pg cannot honour (``requirepeer``, ``sslcrldir``, ``sslcertmode``,
  ``gssdelegation``, OAuth and SCRAM-key settings, ``sslkeylogfile``) are rejected, in
  strings and in the environment, instead of being ignored.
* ``client_encoding`` must be UTF8; ``gssencmode=require`` and ``replication`` are
  rejected (no GSSAPI, no replication protocol).
* ``max_protocol_version`` defaults to 3.2 (libpq 18: 3.0); ``connect_timeout`` accepts
  fractions of a second.
* With several hosts and no port in a URI, ``PGPORT`` still applies (libpq 18 uses 5432).
"""

from __future__ import annotations

from trio_pg.conninfo._parse import parse_dsn
from trio_pg.conninfo._resolve import make_params
from trio_pg.conninfo._types import (
    ChannelBinding,
    ConnectParams,
    GssEncMode,
    HostSpec,
    LoadBalanceHosts,
    RequireAuth,
    SslMode,
    SslNegotiation,
    TargetSessionAttrs,
)

__all__ = [
    "ChannelBinding",
    "ConnectParams",
    "GssEncMode",
    "HostSpec",
    "LoadBalanceHosts",
    "RequireAuth",
    "SslMode",
    "SslNegotiation",
    "TargetSessionAttrs",
    "make_params",
    "parse_dsn",
]
