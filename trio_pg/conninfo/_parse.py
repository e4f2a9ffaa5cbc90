"""Connection string syntax: libpq URIs and keyword/value strings (``libpq-connect.html
#LIBPQ-CONNSTRING``).

This module only splits a string into ``keyword -> value`` pairs; whether a keyword
exists and whether its value makes sense is decided in ``_resolve``. Error messages say
where the problem is (1-based character position) but never quote values, which may be
passwords.
"""

from __future__ import annotations

from typing import Final

from trio_pg.errors import InterfaceError

__all__ = ["parse_dsn"]

_URI_PREFIXES: Final = ("postgresql://", "postgres://")

#: C's isspace(): libpq separates keyword/value pairs with these characters only.
_C_SPACE: Final = frozenset(" \t\n\r\v\f")

_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")


def parse_dsn(dsn: str) -> dict[str, str]:
    """Split a connection string into its ``keyword -> value`` pairs.

    Two syntaxes are accepted (``libpq-connect.html#LIBPQ-CONNSTRING``):

    * a URI, ``postgresql://[user[:password]@][host][:port][,...][/dbname][?k=v&...]``
      (or ``postgres://``): components and query parameters are percent-decoded,
      ``[...]`` encloses an IPv6 address, several ``host:port`` pairs become the
      comma-separated ``host`` and ``port`` lists, and ``ssl=true`` means
      ``sslmode=require`` as in libpq;
    * keyword/value pairs separated by whitespace, ``host=/run/pg dbname='my db'``:
      spaces around ``=`` are allowed, a value with spaces is written in single quotes,
      and a backslash makes the next character literal (``\\'``, ``\\\\``).

    A keyword given twice keeps its last value. Keywords are not checked here.

    Args:
        dsn: The connection string.

    Returns:
        A new dict of the settings, in the order they appear.

    Raises:
        InterfaceError: The string is not valid in either syntax; the message says where.
    """
    start = 0
    while start < len(dsn) and dsn[start] in _C_SPACE:
        start += 1
    for prefix in _URI_PREFIXES:
        if dsn.startswith(prefix, start):
            return _UriParser(dsn, start + len(prefix)).parse()
    return _parse_keyword_value(dsn)


def _error(problem: str, position: int) -> InterfaceError:
    return InterfaceError(f"invalid connection string: {problem} at character {position + 1}")


def _parse_keyword_value(text: str) -> dict[str, str]:
    """Parse ``keyword = value`` pairs the way libpq's conninfo_parse() does."""
    result: dict[str, str] = {}
    n = len(text)
    i = 0
    while True:
        while i < n and text[i] in _C_SPACE:
            i += 1
        if i == n:
            return result
        start = i
        while i < n and text[i] != "=" and text[i] not in _C_SPACE:
            i += 1
        keyword = text[start:i]
        while i < n and text[i] in _C_SPACE:
            i += 1
        if i == n or text[i] != "=":
            raise _error(f'missing "=" after "{keyword}"', start)
        if not keyword:
            raise _error('missing keyword before "="', start)
        i += 1
        while i < n and text[i] in _C_SPACE:
            i += 1
        if i < n and text[i] == "'":
            value, i = _quoted_value(text, i, keyword)
        else:
            value, i = _bare_value(text, i)
        result[keyword] = value


def _bare_value(text: str, i: int) -> tuple[str, int]:
    """An unquoted value: up to whitespace; a backslash makes the next character literal."""
    out: list[str] = []
    n = len(text)
    while i < n and text[i] not in _C_SPACE:
        if text[i] == "\\":
            i += 1
            if i == n:
                break  # libpq drops a trailing lone backslash
        out.append(text[i])
        i += 1
    return "".join(out), i


def _quoted_value(text: str, i: int, keyword: str) -> tuple[str, int]:
    """A value in single quotes starting at ``text[i]``; backslash escapes as above."""
    opening = i
    out: list[str] = []
    n = len(text)
    i += 1
    while i < n:
        char = text[i]
        if char == "'":
            return "".join(out), i + 1
        if char == "\\":
            i += 1
            if i == n:
                break
            char = text[i]
        out.append(char)
        i += 1
    raise _error(f'unterminated quoted value for "{keyword}" (missing closing quote)', opening)


class _UriParser:
    """One pass over a URI, after its ``postgresql://`` prefix (libpq-connect.html
    #LIBPQ-CONNSTRING-URIS)."""

    def __init__(self, uri: str, start: int) -> None:
        self._uri = uri
        self._pos = start
        self._result: dict[str, str] = {}

    def parse(self) -> dict[str, str]:
        self._userinfo()
        self._hosts()
        uri, n = self._uri, len(self._uri)
        if self._pos < n and uri[self._pos] == "/":
            end = uri.find("?", self._pos)
            end = n if end == -1 else end
            dbname = self._decode(self._pos + 1, end)
            if dbname:
                self._result["dbname"] = dbname
            self._pos = end
        if self._pos < n:  # _hosts() only stops at "/", "?" or the end
            self._query(self._pos + 1)
        return self._result

    def _until(self, stops: str) -> int:
        """Index of the first character in ``stops`` from the current position, or the end."""
        i = self._pos
        while i < len(self._uri) and self._uri[i] not in stops:
            i += 1
        return i

    def _userinfo(self) -> None:
        # RFC 3986: user information ends at the first "@" before the path or query.
        end = self._until("/?")
        at = self._uri.find("@", self._pos, end)
        if at == -1:
            return
        colon = self._uri.find(":", self._pos, at)
        user_end = at if colon == -1 else colon
        user = self._decode(self._pos, user_end)
        if user:
            self._result["user"] = user
        if colon != -1:
            password = self._decode(colon + 1, at)
            if password:
                self._result["password"] = password
        self._pos = at + 1

    def _hosts(self) -> None:
        uri, n = self._uri, len(self._uri)
        hosts: list[str] = []
        ports: list[str] = []
        while True:
            if self._pos < n and uri[self._pos] == "[":
                hosts.append(self._ipv6_host())
            else:
                end = self._until(":/?,")
                hosts.append(self._decode(self._pos, end))
                self._pos = end
            port = ""
            if self._pos < n and uri[self._pos] == ":":
                end = self._until("/?,")
                port = self._decode(self._pos + 1, end)
                self._pos = end
            ports.append(port)
            if self._pos < n and uri[self._pos] == ",":
                self._pos += 1
                continue
            break
        # An empty entry means "the default" for that host (libpq-connect.html
        # #LIBPQ-MULTIPLE-HOSTS); a list with no entry at all is left unset, so that
        # PGHOST / PGPORT still apply.
        if any(hosts) or len(hosts) > 1:
            self._result["host"] = ",".join(hosts)
        if any(ports):
            self._result["port"] = ",".join(ports)

    def _ipv6_host(self) -> str:
        uri = self._uri
        opening = self._pos
        close = uri.find("]", opening)
        if close == -1:
            raise _error('missing "]" after the IPv6 address', opening)
        if close == opening + 1:
            raise _error("empty IPv6 address", opening)
        host = self._decode(opening + 1, close)
        self._pos = close + 1
        if self._pos < len(uri) and uri[self._pos] not in ":/?,":
            raise _error(
                f'unexpected "{uri[self._pos]}" after the IPv6 address (expected ":", "/", '
                '"?" or ",")',
                self._pos,
            )
        return host

    def _query(self, start: int) -> None:
        uri = self._uri
        pos = start
        for part in uri[start:].split("&"):
            if part:
                self._parameter(pos, pos + len(part))
            pos += len(part) + 1

    def _parameter(self, start: int, end: int) -> None:
        equals = self._uri.find("=", start, end)
        if equals == -1:
            raise _error('missing "=" in URI query parameter', start)
        if self._uri.find("=", equals + 1, end) != -1:
            raise _error('extra "=" in URI query parameter', start)
        keyword = self._decode(start, equals)
        value = self._decode(equals + 1, end)
        if not keyword:
            raise _error("missing keyword in URI query parameter", start)
        if keyword == "ssl":
            # libpq accepts JDBC's ssl=true as sslmode=require, and nothing else for ssl.
            if value != "true":
                raise _error('URI query parameter "ssl" only accepts "true"', start)
            keyword, value = "sslmode", "require"
        self._result[keyword] = value

    def _decode(self, start: int, end: int) -> str:
        """Percent-decode ``uri[start:end]`` as UTF-8 (RFC 3986 section 2.1)."""
        text = self._uri[start:end]
        if "%" not in text:
            return text
        out = bytearray()
        i = 0
        while i < len(text):
            char = text[i]
            if char != "%":
                out += char.encode("utf-8", "surrogatepass")
                i += 1
                continue
            digits = text[i + 1 : i + 3]
            if len(digits) != 2 or not _HEX_DIGITS.issuperset(digits):
                raise _error(
                    'invalid percent-encoding (expected "%" and two hex digits)', start + i
                )
            if digits == "00":
                raise _error('"%00" (a NUL character) is not allowed', start + i)
            out.append(int(digits, 16))
            i += 3
        try:
            return out.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _error("percent-encoded bytes are not valid UTF-8", start) from exc
