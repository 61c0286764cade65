"""aiohttp resolvers: the address policy applied at resolution time, and a fixed map for tests.

aiohttp's ``TCPConnector`` asks its resolver for the addresses of every host it connects to (page,
link, and every redirect hop) and connects only to what the resolver returned, so filtering here
means the address that was vetted is exactly the address that is connected to: a second, different
DNS answer (DNS rebinding) cannot slip in between a check and the connection.

Resolution failures are ``socket.gaierror`` with the standard codes, so callers can tell a name that
does not exist (``EAI_NONAME``/``EAI_NODATA``: the link is broken) from a temporary failure
(``EAI_AGAIN``: unknown).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable, Mapping

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from bot.net.policy import AddressPolicy, BlockedAddressError

logger = logging.getLogger(__name__)

# "No address associated with hostname": the name exists but has no A/AAAA record. Not on every
# platform; fall back to EAI_NONAME, which is what callers treat it as anyway.
EAI_NODATA: int = getattr(socket, "EAI_NODATA", socket.EAI_NONAME)
# Codes that mean the DNS gave a definite "no such address" answer (not a temporary failure).
NOT_FOUND_CODES = frozenset({socket.EAI_NONAME, EAI_NODATA})


class PolicyResolver(AbstractResolver):
    """Resolve with ``base`` (default aiohttp's ``ThreadedResolver``), then drop refused addresses.

    Returns only the addresses ``policy`` allows. Raises :class:`BlockedAddressError` (an ``OSError``)
    when the name resolved but every address is refused; resolution errors of ``base`` propagate
    unchanged (``socket.gaierror``).
    """

    def __init__(self, policy: AddressPolicy, base: AbstractResolver | None = None) -> None:
        self._policy = policy
        # ThreadedResolver needs a running loop, so the default is built on first use.
        self._base = base
        self._owns_base = base is None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._base is None:
            self._base = ThreadedResolver()
        results = await self._base.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        refused: list[str] = []
        for result in results:
            reason = self._policy.blocked_reason(result["host"])
            if reason is None:
                allowed.append(result)
            else:
                refused.append(f"{result['host']}: {reason}")
        if refused:
            logger.info("address policy refused %s for %s", "; ".join(refused), host)
        if not allowed:
            if not refused:
                raise socket.gaierror(EAI_NODATA, f"{host} has no address")
            raise BlockedAddressError(host, [r["host"] for r in results], "; ".join(refused))
        return allowed

    async def close(self) -> None:
        if self._base is not None and self._owns_base:
            await self._base.close()


class StaticResolver(AbstractResolver):
    """Resolve from a fixed ``{hostname: [ip, ...]}`` map (tests and benchmarks; no DNS at all).

    Names are matched case-insensitively, a trailing dot ignored. A name not in the map fails like a
    name that does not exist: ``socket.gaierror(EAI_NONAME)``. Wrap it in :class:`PolicyResolver`
    (``HttpClient`` does) to apply the address policy.
    """

    def __init__(self, hosts: Mapping[str, Iterable[str]]) -> None:
        self._hosts: dict[str, tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]] = {
            _normal(name): tuple(ipaddress.ip_address(ip) for ip in ips) for name, ips in hosts.items()
        }

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self._hosts.get(_normal(host))
        if addresses is None:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: Name or service not known")
        results: list[ResolveResult] = []
        for address in addresses:
            address_family = socket.AF_INET if address.version == 4 else socket.AF_INET6
            if family not in (socket.AF_UNSPEC, address_family):
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(address),
                    port=port,
                    family=address_family,
                    proto=0,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            raise socket.gaierror(EAI_NODATA, f"{host}: No address associated with hostname")
        return results

    async def close(self) -> None:
        return None


def _normal(name: str) -> str:
    return name.strip().rstrip(".").lower()
