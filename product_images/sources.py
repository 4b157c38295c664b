"""Download http(s) source photos without letting a catalog row reach what it should not.

A catalog is data from outside, and a `source` URL in it makes this process send a request:
without checks, a row could read the cloud metadata service (169.254.169.254), an admin page on
localhost or anything on the private network, or stall a worker on an endless download.

Rules, each a `ForbiddenSourceError` or `SourceFetchError` naming the URL:
- only http:// and https://, on every hop; redirects are followed here, one at a time, at most
  `source_url_max_redirects`, each checked like the first URL (a redirect to file:// or to a
  private address is refused);
- the host is resolved here and every address it resolves to must be public: loopback,
  link-local, private and other non-public addresses (IPv4, IPv6 and IPv4-mapped IPv6) are
  refused unless `source_url_allow_private` or `source_url_allowed_networks` allows them;
  multicast, unspecified and reserved addresses are always refused;
- the request goes to the address that was checked (the URL's host is kept for the Host header,
  TLS SNI and certificate check), so a DNS answer that changes between the check and the
  connection (DNS rebinding) cannot redirect it;
- `source_url_timeout` bounds connecting, each read and the whole download;
- `source_url_max_bytes` bounds the body: a bigger Content-Length is refused before reading, and
  the count of (decompressed) bytes stops the download as soon as it passes the limit.

Environment proxies are not used: through a proxy the address checks would be the proxy's.
Name resolution uses the system resolver, whose own timeout applies.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass

import httpx

from product_images import __version__
from product_images.errors import (
    ForbiddenSourceError,
    ObjectNotFoundError,
    SourceFetchError,
    SourceTooLargeError,
)
from product_images.settings import Settings

__all__ = ["address_refusal", "fetch_url"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCHEMES = ("http", "https")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_GONE = frozenset({404, 410})
_ALLOW_HINT = (
    "set PRODUCT_IMAGES_SOURCE_URL_ALLOW_PRIVATE=true or list its network in "
    "PRODUCT_IMAGES_SOURCE_URL_ALLOWED_NETWORKS to allow it"
)


@dataclass(frozen=True)
class _Fetch:
    """One download: the URL as given (it names every error), its settings and its deadline."""

    source: str
    settings: Settings
    deadline: float
    verify: ssl.SSLContext | bool

    def at(self, url: httpx.URL) -> str:
        """Names the hop in a message, unless it is the URL the message already starts with."""
        return "" if str(url) == self.source else f"{url}: "


def fetch_url(url: str, settings: Settings, *, verify: ssl.SSLContext | bool = True) -> bytes:
    """The body of an http(s) `url`, under the rules above. A 404 or 410 is ObjectNotFoundError.

    `verify` is httpx's: True checks certificates against certifi's CA bundle.
    """
    fetch = _Fetch(url, settings, time.monotonic() + settings.sources.source_url_timeout, verify)
    target = _checked_url(fetch, url, base=None)
    for _ in range(settings.sources.source_url_max_redirects + 1):
        _check_deadline(fetch)
        answer = _fetch_hop(fetch, target)
        if isinstance(answer, bytes):
            return answer
        target = answer
    raise SourceFetchError(url, f"more than {settings.sources.source_url_max_redirects} redirects")


def address_refusal(address: IPAddress, settings: Settings) -> str | None:
    """Why `address` may not be fetched from (e.g. "a loopback address; set ..."), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_multicast or address.is_unspecified:
        article = "a multicast" if address.is_multicast else "an unspecified"
        return f"{article} address, never fetched"
    kind = _non_public_kind(address)
    if kind is None:
        return None
    if kind == "reserved":
        return "a reserved address, never fetched"
    allowed = settings.sources.source_url_allow_private or any(
        address in network for network in settings.sources.source_url_allowed_networks
    )
    return None if allowed else f"a {kind} address; {_ALLOW_HINT}"


def _non_public_kind(address: IPAddress) -> str | None:
    # Loopback and link-local first: IPv6 files ::1 and fe80::/10 under "reserved" too.
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    return None if address.is_global else "non-public"


def _checked_url(fetch: _Fetch, raw: str, base: httpx.URL | None) -> httpx.URL:
    """`raw` (relative to `base` for a redirect) parsed, if it is an http(s) URL with a host."""
    where = f"redirected to {raw}: " if base is not None else ""
    try:
        url = base.join(raw) if base is not None else httpx.URL(raw)
    except httpx.InvalidURL as exc:
        raise ForbiddenSourceError(fetch.source, f"{where}not a valid URL ({exc})") from None
    if url.scheme not in _SCHEMES:
        raise ForbiddenSourceError(
            fetch.source, f"{where}only http:// and https:// sources are fetched, not {url.scheme}:"
        )
    if not url.host:
        raise ForbiddenSourceError(fetch.source, f"{where}the URL has no host")
    return url


def _resolve(fetch: _Fetch, url: httpx.URL) -> list[IPAddress]:
    """Every address of the URL's host, each one allowed; refuses the host if any is not."""
    host = url.raw_host.decode("ascii")
    literal = _ip_literal(host)
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = [literal] if literal else _lookup(fetch, host, port)
    for address in addresses:
        refusal = address_refusal(address, fetch.settings)
        if refusal:
            named = f"{host} is" if literal else f"{host} resolves to {address},"
            raise ForbiddenSourceError(fetch.source, f"{fetch.at(url)}{named} {refusal}")
    return addresses


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _lookup(fetch: _Fetch, host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceFetchError(fetch.source, f"cannot resolve host {host!r} ({exc})") from None
    # The scope of a link-local IPv6 answer ("fe80::1%eth0") is not part of the address.
    found = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]
    return list(dict.fromkeys(found))


def _fetch_hop(fetch: _Fetch, url: httpx.URL) -> bytes | httpx.URL:
    """The body, or the next URL to go to; tries the host's checked addresses in order."""
    failure: httpx.ConnectError | None = None
    for address in _resolve(fetch, url):
        try:
            return _request(fetch, url, address)
        except httpx.ConnectError as exc:
            failure = exc
    raise SourceFetchError(fetch.source, f"{fetch.at(url)}cannot connect ({failure})")


def _request(fetch: _Fetch, url: httpx.URL, address: IPAddress) -> bytes | httpx.URL:
    """One GET sent to `address`, which the URL's host was checked to resolve to."""
    timeout = fetch.settings.sources.source_url_timeout
    # A fresh client per request: a pooled TLS connection made for one host name must not
    # carry a request for another name on the same address.
    with httpx.Client(timeout=timeout, trust_env=False, verify=fetch.verify) as client:
        try:
            response = client.send(_pinned_request(client, url, address), stream=True)
            try:
                return _read_answer(fetch, url, response)
            finally:
                response.close()
        except httpx.TimeoutException:
            raise SourceFetchError(
                fetch.source, f"{fetch.at(url)}no answer within {timeout:g} s"
            ) from None
        except httpx.ConnectError:
            raise  # the caller tries the host's next address
        except httpx.HTTPError as exc:
            raise SourceFetchError(
                fetch.source, f"{fetch.at(url)}{type(exc).__name__}: {exc}"
            ) from None


def _pinned_request(client: httpx.Client, url: httpx.URL, address: IPAddress) -> httpx.Request:
    """A GET of `url` that connects to `address` yet presents the URL's host name."""
    host = url.raw_host.decode("ascii")
    headers = {
        "Host": url.netloc.decode("ascii"),
        "Accept": "image/*, */*;q=0.5",
        "User-Agent": f"product-images/{__version__}",
    }
    # httpcore sends the SNI name and checks the certificate against it.
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    pinned = url.copy_with(host=str(address))
    return client.build_request("GET", pinned, headers=headers, extensions=extensions)


def _read_answer(fetch: _Fetch, url: httpx.URL, response: httpx.Response) -> bytes | httpx.URL:
    status = response.status_code
    if status in _REDIRECTS:
        location = response.headers.get("location")
        if not location:
            raise SourceFetchError(
                fetch.source, f"{fetch.at(url)}HTTP {status} redirect without Location"
            )
        return _checked_url(fetch, location, base=url)
    if status in _GONE:
        raise ObjectNotFoundError(fetch.source)
    if not 200 <= status < 300:
        raise SourceFetchError(
            fetch.source, f"{fetch.at(url)}HTTP {status} {response.reason_phrase}"
        )
    return _read_body(fetch, response)


def _read_body(fetch: _Fetch, response: httpx.Response) -> bytes:
    limit = fetch.settings.sources.source_url_max_bytes
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise SourceTooLargeError(
            fetch.source,
            f"Content-Length is {int(declared):,} bytes, over the limit of {limit:,} bytes",
        )
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise SourceTooLargeError(
                fetch.source, f"download passed the limit of {limit:,} bytes: stopped"
            )
        _check_deadline(fetch)
        chunks.append(chunk)
    return b"".join(chunks)


def _check_deadline(fetch: _Fetch) -> None:
    # Read timeouts bound each wait; this bounds a server that drips bytes just fast enough.
    if time.monotonic() > fetch.deadline:
        timeout = fetch.settings.sources.source_url_timeout
        raise SourceFetchError(fetch.source, f"download took over {timeout:g} s: stopped")
