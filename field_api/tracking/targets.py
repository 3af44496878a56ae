"""Webhook targets: only public addresses, checked at registration and again at each delivery.

A subscriber's URL is refused when it carries credentials, when its scheme is not https in
production (http is allowed elsewhere), and when its host is, or resolves to, anything but a
public address: loopback (unless the development switch allows it, see
:attr:`field_api.config.Settings.webhook_loopback_allowed`), private, shared (100.64/10),
link-local, multicast, unspecified, reserved, documentation ranges, the cloud metadata
addresses (169.254.169.254, fd00:ec2::254, 100.100.100.200) and IPv4-mapped or 6to4 IPv6 forms
of any of them. Numeric hosts are read the way the C resolver reads them (``0x7f000001``,
``2130706433``, ``0177.1`` are all 127.0.0.1), so no spelling slips past the check.

At delivery the name is resolved once more (a DNS answer can change: rebinding), every address
it resolves to is checked, and the request is sent to the checked address itself — the URL's
host is replaced by that address, with the original ``Host`` header and TLS server name (SNI,
and certificate verification against the name) — so no second resolution happens between the
check and the connection. That is why the sender connects to the address rather than checking
first and letting the HTTP client resolve again.

Resolution is the external seam: :func:`resolve` (tests replace it with ``monkeypatch``).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class TargetRefused(ValueError):
    """The URL is not an acceptable webhook target; the English text says why (logs), and
    ``message`` says it for people (``webhook_target.<why>`` of :mod:`field_api.messages`)."""

    def __init__(self, text: str, *, why: str, **params: Any) -> None:
        super().__init__(text)
        self.why = why
        self.message: dict[str, Any] = {"code": f"webhook_target.{why}", "params": params}


@dataclass(frozen=True)
class AddressProblem:
    """Why an address may not receive webhooks: ``kind`` (metadata, loopback, ...) and where."""

    kind: str
    address: str
    inside: str | None = None  # the IPv6 address an IPv4 one is embedded in

    def __str__(self) -> str:
        text = f"{self.address} is {_KIND_TEXT[self.kind]}"
        return f"{text} (inside {self.inside})" if self.inside else text


_KIND_TEXT: Final = {
    "metadata": "a cloud metadata address",
    "loopback": "a loopback address",
    "unspecified": "the unspecified address",
    "link_local": "a link-local address",
    "multicast": "a multicast address",
    "reserved": "a reserved address",
    "private": "a private address",
    "not_public": "not a public address",
}


def _refused(problem: AddressProblem, host: str | None = None) -> TargetRefused:
    if host is None:
        return TargetRefused(
            f"webhook target refused: {problem}", why="address", address=problem.address,
            kind=_kind(problem),
        )
    return TargetRefused(
        f"webhook target refused: {host} resolves to {problem}", why="resolves_to", host=host,
        address=problem.address, kind=_kind(problem),
    )


def _kind(problem: AddressProblem) -> dict[str, Any]:
    return {"code": f"address_kind.{problem.kind}", "params": {}}


@dataclass(frozen=True)
class TargetPolicy:
    """What a target may be: https only (production) and whether loopback is allowed."""

    https_only: bool
    allow_loopback: bool


@dataclass(frozen=True)
class Target:
    """A checked target: where to connect and what to tell the server."""

    url: str
    scheme: str
    host: str  # as written (a name, or an address without brackets)
    port: int
    addresses: tuple[str, ...]  # every address checked, in resolver order

    @property
    def host_header(self) -> str:
        """The ``Host`` header the server expects (the URL's own authority)."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return shown if self.port == default else f"{shown}:{self.port}"

    @property
    def is_name(self) -> bool:
        """Whether the host is a name (not an address literal)."""
        return literal_address(self.host) is None

    def pinned_url(self, address: str) -> str:
        """The URL with its host replaced by ``address`` (path and query kept)."""
        split = urlsplit(self.url)
        shown = f"[{address}]" if ":" in address else address
        return SplitResult(
            split.scheme, f"{shown}:{self.port}", split.path or "/", split.query, ""
        ).geturl()


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in seen:
            seen.append(address)
    return seen


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to now (the seam tests replace)."""
    return system_resolve(host, port)


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """``host`` read as the C ``inet_aton`` reads it (1-4 parts, decimal/octal/hex), or None."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        text = part.lower()
        try:
            if text.startswith("0x"):
                value = int(text[2:] or "0", 16)
            elif len(text) > 1 and text.startswith("0"):
                value = int(text[1:], 8)
            else:
                value = int(text, 10) if text.isdigit() else -1
        except ValueError:
            return None
        if value < 0:
            return None
        values.append(value)
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number * 256 + v
    number = number * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(number)


def literal_address(host: str) -> IPAddress | None:
    """The address a host literal names (any numeric IPv4 spelling, IPv6), or None for a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    return _inet_aton(bare.rstrip("."))


def address_problem(address: IPAddress, policy: TargetPolicy) -> AddressProblem | None:
    """None when ``address`` may receive webhooks, else why not."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            problem = address_problem(embedded, policy)
            return (
                AddressProblem(problem.kind, problem.address, str(address)) if problem else None
            )
    if address in METADATA_ADDRESSES:
        return AddressProblem("metadata", str(address))
    if address.is_loopback:
        return None if policy.allow_loopback else AddressProblem("loopback", str(address))
    if address.is_unspecified:
        return AddressProblem("unspecified", str(address))
    if address.is_link_local:
        return AddressProblem("link_local", str(address))
    if address.is_multicast:
        return AddressProblem("multicast", str(address))
    if address.is_reserved:
        return AddressProblem("reserved", str(address))
    if address.is_private:
        return AddressProblem("private", str(address))
    if not address.is_global:
        return AddressProblem("not_public", str(address))
    return None


def _loopback_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name in LOOPBACK_NAMES or name.endswith(".localhost")


def parse(url: str, policy: TargetPolicy) -> tuple[SplitResult, str, int]:
    """Check what can be checked without DNS; returns the split URL, its host and port."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise TargetRefused(
            "webhook URL contains whitespace or control characters", why="control_characters"
        )
    split = urlsplit(url)
    scheme = split.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetRefused(
            "webhook URL must start with https:// (or http:// outside production)", why="scheme"
        )
    if policy.https_only and scheme != "https":
        raise TargetRefused("webhook URLs must use https in production", why="https_only")
    if "@" in split.netloc or split.username is not None or split.password is not None:
        raise TargetRefused(
            "webhook URL must not carry credentials (user:password@)", why="credentials"
        )
    host = split.hostname or ""
    if not host:
        raise TargetRefused("webhook URL has no host", why="no_host")
    try:
        port = split.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused(f"webhook URL has an invalid port: {exc}", why="port") from exc
    literal = literal_address(host)
    if literal is not None:
        problem = address_problem(literal, policy)
        if problem:
            raise _refused(problem)
    elif _loopback_name(host) and not policy.allow_loopback:
        raise TargetRefused(
            f"webhook target refused: {host} names the loopback interface",
            why="loopback_name",
            host=host,
        )
    return split, host, port


def check(url: str, policy: TargetPolicy) -> Target:
    """Parse, resolve and check ``url``; every address it resolves to must be acceptable."""
    split, host, port = parse(url, policy)
    literal = literal_address(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(
                f"webhook host {host} does not resolve: {exc}", why="unresolved", host=host
            ) from exc
        if not addresses:
            raise TargetRefused(
                f"webhook host {host} does not resolve", why="unresolved", host=host
            )
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError as exc:
            raise TargetRefused(
                f"webhook host {host} resolved to {text!r}", why="unresolved", host=host
            ) from exc
        problem = address_problem(address, policy)
        if problem:
            raise _refused(problem, host)
    return Target(
        url=url,
        scheme=split.scheme.lower(),
        host=host,
        port=port,
        addresses=tuple(str(ipaddress.ip_address(a)) for a in addresses),
    )


def registration_problem(url: str, policy: TargetPolicy) -> TargetRefused | None:
    """Why ``url`` cannot be registered, or None.

    A name that does not resolve yet is accepted (it may be published later); it is resolved
    and checked again at every delivery, and nothing is sent until it resolves to public
    addresses only.
    """
    try:
        parse(url, policy)
        check(url, policy)
    except TargetRefused as exc:
        return None if exc.why == "unresolved" else exc
    return None
