"""The HTTP layer: address policy (SSRF), policy-enforcing resolver, and the shared client.

- :mod:`bot.net.policy`: :class:`AddressPolicy`, which addresses and URLs may be fetched.
- :mod:`bot.net.resolver`: :class:`PolicyResolver` (vets resolved addresses) and :class:`StaticResolver`.
- :mod:`bot.net.client`: :class:`HttpClient`, the one I/O seam, shared by every check in the process.
- :mod:`bot.net.decode`: Content-Encoding decoding under a size cap.
"""

from bot.net.client import HttpClient, fetch_error_from_exception, host_key, origin_key
from bot.net.policy import AddressPolicy, BlockedAddressError
from bot.net.resolver import PolicyResolver, StaticResolver

__all__ = [
    "AddressPolicy",
    "BlockedAddressError",
    "HttpClient",
    "PolicyResolver",
    "StaticResolver",
    "fetch_error_from_exception",
    "host_key",
    "origin_key",
]
