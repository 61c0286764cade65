"""Files people share with the bot: find the one to import and download it with the bot token.

A file is located through the Web API (``files.list`` filtered by channel, user and time, or the file
object of a DM's ``file_share`` message, completed with ``files.info`` when Slack leaves fields out) and
downloaded from its ``url_private_download`` with ``Authorization: Bearer <bot token>`` (Slack docs:
"Working with files", "files.list", "files.info"; scope ``files:read``).

The download URL comes from Slack's answer, never from what a user typed, and is still checked: only
Slack's file host (``files.<Slack API host>``, i.e. ``https://files.slack.com``) or the origin of the
configured ``SLACK_API_URL`` (a stand-in in tests) receive the token. Redirects are not followed (a
redirect would carry the token elsewhere, and Slack answers a token without ``files:read`` with a
redirect to its sign-in page). The size is checked twice: the ``size`` Slack declares, before any byte
is fetched, and the bytes actually received, while streaming. Every failure a person can act on is a
:class:`FileImportError` (an :class:`bot.errors.InputError`) with a message for them.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from yarl import URL

from bot.errors import InputError
from bot.imports import MAX_IMPORT_BYTES

logger = logging.getLogger(__name__)

# How far back `/linkcheck import` looks for the file: the flow is "share the export, then run the
# command", so an hour covers a pause in between without picking up last week's file by surprise.
RECENT_FILE_WINDOW_S = 3600
# Files asked of files.list per call (newest first); someone rarely shares more in an hour.
FILES_LIST_COUNT = 20
# A whole download may take this long: 50 MB at about 200 kB/s, a slow but working link.
DOWNLOAD_TIMEOUT_S = 300.0
# No byte for this long means the transfer is stuck, whatever the total budget says.
DOWNLOAD_READ_TIMEOUT_S = 30.0
DOWNLOAD_CONNECT_TIMEOUT_S = 10.0
# Read the body in pieces this large, so the size cap is checked as the bytes arrive.
DOWNLOAD_CHUNK_BYTES = 64 * 1024
# Names that look like an export; preferred over other files shared in the same window (a screenshot
# posted after the CSV should not be the one imported).
IMPORTABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".zip")
IMPORTABLE_FILETYPES = frozenset({"csv", "tsv", "text", "zip"})
# Slack's file modes that have no bytes to download (Slack docs, "File object": mode).
NO_CONTENT_MODES = frozenset({"external", "tombstone", "email", "post", "docs", "canvas", "list"})


class FileImportError(InputError):
    """A shared file that cannot be fetched or must not be imported; the message is for the person."""


@dataclass(frozen=True, slots=True)
class DownloadLimits:
    """Caps on one download: ``max_bytes`` (declared and received; the import core's own cap by
    default), and the time limits in seconds."""

    max_bytes: int = MAX_IMPORT_BYTES
    timeout_s: float = DOWNLOAD_TIMEOUT_S
    read_timeout_s: float = DOWNLOAD_READ_TIMEOUT_S
    connect_timeout_s: float = DOWNLOAD_CONNECT_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class SlackFile:
    """The parts of a Slack file object an import needs (Slack docs, "File object")."""

    id: str
    name: str
    size: int | None
    url: str | None  # url_private_download
    created: float
    filetype: str = ""
    mimetype: str = ""
    mode: str = ""
    is_external: bool = False
    user: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> SlackFile:
        size = data.get("size")
        return cls(
            id=str(data.get("id") or ""),
            name=str(data.get("name") or data.get("title") or data.get("id") or "file"),
            size=int(size) if isinstance(size, int | float) else None,
            url=str(data["url_private_download"]) if data.get("url_private_download") else None,
            created=float(data.get("created") or data.get("timestamp") or 0),
            filetype=str(data.get("filetype") or ""),
            mimetype=str(data.get("mimetype") or ""),
            mode=str(data.get("mode") or ""),
            is_external=bool(data.get("is_external")),
            user=str(data.get("user") or ""),
        )

    @property
    def complete(self) -> bool:
        """Whether the object says enough to download it (Slack may answer ``file_access:
        check_file_info`` with a bare id, e.g. in Slack Connect conversations)."""
        return bool(self.url) and self.size is not None

    @property
    def looks_importable(self) -> bool:
        return self.name.lower().endswith(IMPORTABLE_SUFFIXES) or self.filetype in IMPORTABLE_FILETYPES


async def newest_shared_file(
    client: AsyncWebClient, *, channel_id: str, user_id: str, since: float
) -> SlackFile | None:
    """The newest file ``user_id`` shared in ``channel_id`` at or after ``since`` (Unix seconds):
    the newest that looks like an export (:data:`IMPORTABLE_SUFFIXES`), else the newest of any kind, so
    the import can say why it is not one. None when there is none. Raises
    :class:`slack_sdk.errors.SlackApiError` (e.g. ``missing_scope`` without ``files:read``)."""
    response = await client.files_list(
        channel=channel_id, user=user_id, ts_from=str(int(since)), count=FILES_LIST_COUNT
    )
    files = [SlackFile.from_api(f) for f in response.get("files") or [] if isinstance(f, dict)]
    files = [f for f in files if f.id and (not f.user or f.user == user_id) and f.created >= since]
    if not files:
        return None
    files.sort(key=lambda f: f.created, reverse=True)
    return next((f for f in files if f.looks_importable), files[0])


async def complete_file(client: AsyncWebClient, file: SlackFile) -> SlackFile:
    """``file`` with its download URL and size, asking ``files.info`` when the object lacks them."""
    if file.complete:
        return file
    response = await client.files_info(file=file.id)
    data = response.get("file")
    return SlackFile.from_api(data) if isinstance(data, dict) else file


def allowed_download_origins(api_url: str) -> frozenset[tuple[str, str, int]]:
    """(scheme, host, port) of the origins that may receive the bot token for a download: the origin of
    ``api_url`` (``SLACK_API_URL``) and, for a named API host, ``https://files.<host>`` (Slack's file
    host: ``files.slack.com`` for the default ``https://slack.com/api/``)."""
    api = URL(api_url)
    origins: set[tuple[str, str, int]] = set()
    if api.scheme and api.host and api.port is not None:
        origins.add((api.scheme, api.host.lower(), api.port))
        if not _is_ip(api.host):
            origins.add(("https", f"files.{api.host.lower()}", 443))
    return frozenset(origins)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def check_downloadable(file: SlackFile, *, api_url: str, max_bytes: int) -> str:
    """The URL to download ``file`` from, once it passed every check before the first byte: it has
    content on Slack, a size within ``max_bytes``, and a URL on an allowed origin. Raises
    :class:`FileImportError`."""
    if file.is_external or file.mode in NO_CONTENT_MODES:
        raise FileImportError(
            f"{file.name} is not a file uploaded to Slack (it is a link to another service or a Slack "
            "post): download the export and share the file itself."
        )
    if file.size is not None and file.size > max_bytes:
        raise FileImportError(
            f"{file.name} is {_mb(file.size)}; Linkpact imports files up to {_mb(max_bytes)}. "
            "Split the export, or import it with `linkpact import FILE`."
        )
    if not file.url:
        raise FileImportError(f"Slack did not give Linkpact a download link for {file.name}.")
    url = URL(file.url)
    origin = (url.scheme, (url.host or "").lower(), url.port or 0)
    if origin not in allowed_download_origins(api_url):
        logger.warning("refused to download file %s from %s (not Slack's file host)", file.id, url.origin())
        raise FileImportError(
            f"{file.name} is not hosted by Slack, so Linkpact did not download it (it sends its token only "
            "to Slack's own file host)."
        )
    return str(url)


async def download_file(
    file: SlackFile, *, token: str, api_url: str, limits: DownloadLimits = DownloadLimits()
) -> bytes:
    """The bytes of ``file``, fetched with ``Authorization: Bearer <token>`` after
    :func:`check_downloadable`; at most ``limits.max_bytes`` are read (a longer body is refused as it
    streams, whatever size Slack declared), within ``limits``' time limits. Raises
    :class:`FileImportError` for anything the person should hear about (too big, not Slack's host, a
    redirect or a web page instead of the file, an HTTP error, a timeout)."""
    url = check_downloadable(file, api_url=api_url, max_bytes=limits.max_bytes)
    timeout = aiohttp.ClientTimeout(
        total=limits.timeout_s, sock_connect=limits.connect_timeout_s, sock_read=limits.read_timeout_s
    )
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout, trust_env=False) as session,
            session.get(url, headers={"Authorization": f"Bearer {token}"}, allow_redirects=False) as response,
        ):
            _check_response(file, response, limits.max_bytes)
            body = bytearray()
            async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
                body += chunk
                if len(body) > limits.max_bytes:
                    raise FileImportError(
                        f"{file.name} is larger than {_mb(limits.max_bytes)}, the most Linkpact imports; "
                        "the download was stopped. Split the export, or use `linkpact import FILE`."
                    )
            return bytes(body)
    except TimeoutError as exc:
        raise FileImportError(
            f"Downloading {file.name} from Slack took too long (limit {limits.timeout_s:g} s); try again."
        ) from exc
    except aiohttp.ClientError as exc:
        logger.warning("downloading file %s failed: %s", file.id, type(exc).__name__)
        raise FileImportError(
            f"Downloading {file.name} from Slack failed ({type(exc).__name__}); try again."
        ) from exc


def _check_response(file: SlackFile, response: aiohttp.ClientResponse, max_bytes: int) -> None:
    if 300 <= response.status < 400:
        # Slack sends a token it will not honour for files to its sign-in page.
        raise FileImportError(
            f"Slack did not hand over {file.name} (it redirected the download): the app probably lacks the "
            "`files:read` scope; reinstall it from manifest.yml."
        )
    if response.status != 200:
        raise FileImportError(f"Slack answered HTTP {response.status} for {file.name}; try again later.")
    if response.content_type == "text/html" and "html" not in file.mimetype and file.filetype != "html":
        raise FileImportError(
            f"Slack answered with a web page instead of {file.name}: the app probably lacks the "
            "`files:read` scope; reinstall it from manifest.yml."
        )
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise FileImportError(
            f"{file.name} is {_mb(declared)}; Linkpact imports files up to {_mb(max_bytes)}. "
            "Split the export, or import it with `linkpact import FILE`."
        )


def _mb(size: int) -> str:
    """A size for people: ``60.0 MB``, ``2 kB``, ``512 bytes`` (decimal units, as Slack shows them)."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    if size >= 1_000:
        return f"{size / 1_000:.0f} kB"
    return f"{size} bytes"
