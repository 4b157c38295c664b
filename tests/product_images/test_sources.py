"""http(s) sources: fetched from a real server on 127.0.0.1 when private addresses are allowed,
refused (before any request is sent) when they are not, with every redirect hop checked, the
body size bounded while streaming and slow servers cut off."""

from __future__ import annotations

import contextlib
import datetime
import gzip
import io
import ipaddress
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from product_images.errors import (
    ForbiddenSourceError,
    MissingSourceError,
    ObjectNotFoundError,
    SourceError,
    SourceFetchError,
    SourceTooLargeError,
)
from product_images.manifest import Manifest
from product_images.pipeline import load_source
from product_images.request import ProductRequest
from product_images.runner import run_product
from product_images.settings import Settings
from product_images.sources import address_refusal, fetch_url
from product_images.status import ProductStatus
from product_images.store import LocalStore, read_url
from product_images.testing.fixtures.images import draw_product
from product_images.wiring import wire

ONLY_HTTP = "only http:// and https:// sources are fetched, not"
HINT = (
    "set PRODUCT_IMAGES_SOURCE_URL_ALLOW_PRIVATE=true or list its network in "
    "PRODUCT_IMAGES_SOURCE_URL_ALLOWED_NETWORKS to allow it"
)
LOOPBACK = f"loopback address; {HINT}"


def jpeg() -> bytes:
    buffer = io.BytesIO()
    draw_product(size=(320, 256))[0].save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


PHOTO = jpeg()
BIG = 2_000_000
LIMIT = 1_000_000


# ------------------------------------------------------------------------------------------
# a real HTTP server on 127.0.0.1


Route = Callable[[BaseHTTPRequestHandler, "Server"], None]


class Server:
    """A threaded HTTP(S) server on 127.0.0.1 that records every request it gets."""

    def __init__(self, routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, routes))
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _handler(server: Server, routes: dict[str, Route]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            server.requests.append((self.path, self.headers.get("Host", "")))
            route = routes.get(self.path)
            if route is None:
                send(self, 404, b"not found")
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                route(self, server)  # the client may give up first, as it should

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str | None) -> None:
    handler.send_response(status)
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    named.setdefault("Content-Length", str(len(body)))
    for name, value in named.items():
        if value is not None:
            handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str | Callable[[Server], str]) -> Route:
    def route(handler: BaseHTTPRequestHandler, server: Server) -> None:
        target = location(server) if callable(location) else location
        send(handler, 302, b"", Location=target)

    return route


def unsized(handler: BaseHTTPRequestHandler, server: Server) -> None:
    """No Content-Length: the body runs until the connection closes."""
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    for _ in range(BIG // 65536 + 1):
        handler.wfile.write(bytes(65536))


def gzip_bomb(handler: BaseHTTPRequestHandler, server: Server) -> None:
    body = gzip.compress(bytes(BIG))  # about 2 kB on the wire, 2 MB decoded
    send(handler, 200, body, Content_Encoding="gzip", Content_Type="image/jpeg")


def slow(handler: BaseHTTPRequestHandler, server: Server) -> None:
    server.stopping.wait(5)  # answers nothing until the test ends


def drip(handler: BaseHTTPRequestHandler, server: Server) -> None:
    """One byte every 0.2 s: never idle long enough for a read timeout."""
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    for _ in range(100):
        if server.stopping.wait(0.2):
            return
        handler.wfile.write(b"x")
        handler.wfile.flush()


ROUTES: dict[str, Route] = {
    "/photo.jpg": lambda h, s: send(h, 200, PHOTO, Content_Type="image/jpeg"),
    "/moved": redirect("/photo.jpg"),
    "/to-file": redirect("file:///etc/passwd"),
    "/to-ftp": redirect("ftp://example.com/photo.jpg"),
    "/to-private": redirect("http://10.0.0.1/photo.jpg"),
    "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
    "/to-ipv6-loopback": redirect(lambda s: f"http://[::1]:{s.port}/photo.jpg"),
    "/loop": redirect("/loop"),
    "/no-location": lambda h, s: send(h, 302, b""),
    "/big": lambda h, s: send(h, 200, b"", Content_Length=str(BIG)),
    "/unsized": unsized,
    "/gzip-bomb": gzip_bomb,
    "/slow": slow,
    "/drip": drip,
    "/gone": lambda h, s: send(h, 410, b"gone"),
    "/busy": lambda h, s: send(h, 503, b"busy"),
}


@pytest.fixture
def server() -> Iterator[Server]:
    with Server(ROUTES) as running:
        yield running


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"source_url_max_bytes": LIMIT, "source_url_timeout": 2.0}
    return Settings(**{**values, **overrides})


ALLOW_PRIVATE = {"source_url_allow_private": True}
ONLY_127_0_0_1 = {"source_url_allowed_networks": ["127.0.0.1/32"]}


def refused(url: str, config: Settings) -> SourceError:
    with pytest.raises(SourceError) as caught:
        read_url(url, settings=config)
    return caught.value


# ------------------------------------------------------------------------------------------
# fetching


def test_fetches_from_a_local_server_when_private_addresses_are_allowed(server: Server) -> None:
    assert read_url(server.url("/photo.jpg"), settings=settings(**ALLOW_PRIVATE)) == PHOTO
    assert server.requests == [("/photo.jpg", f"127.0.0.1:{server.port}")]


def test_an_allowed_network_is_enough(server: Server) -> None:
    assert read_url(server.url("/photo.jpg"), settings=settings(**ONLY_127_0_0_1)) == PHOTO


def test_redirects_are_followed_hop_by_hop(server: Server) -> None:
    assert read_url(server.url("/moved"), settings=settings(**ONLY_127_0_0_1)) == PHOTO
    assert [path for path, _ in server.requests] == ["/moved", "/photo.jpg"]


def test_a_url_source_makes_a_product(server: Server, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "out")
    config = settings(**ALLOW_PRIVATE, store=store.url, master_side=256, threads=1)
    request = ProductRequest(sku="URL-1", source=server.url("/photo.jpg"), platforms=["shopify"])
    result = run_product(request, wire(config, store))
    assert result.status == "done", result.message
    manifest = Manifest.model_validate_json(store.get("URL-1/manifest.json"))
    assert manifest.source.key == server.url("/photo.jpg")


# ------------------------------------------------------------------------------------------
# refused before any request


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("http://127.0.0.1:{port}/a.jpg", f"127.0.0.1 is a loopback address; {HINT}"),
        ("http://localhost:{port}/a.jpg", f"localhost resolves to 127.0.0.1, a {LOOPBACK}"),
        ("http://[::1]:{port}/a.jpg", f"::1 is a loopback address; {HINT}"),
        ("http://[::ffff:127.0.0.1]:{port}/", f"::ffff:127.0.0.1 is a loopback address; {HINT}"),
        ("http://10.1.2.3/x.jpg", f"10.1.2.3 is a private address; {HINT}"),
        ("http://192.168.0.10/x.jpg", f"192.168.0.10 is a private address; {HINT}"),
        ("http://169.254.169.254/latest/", f"169.254.169.254 is a link-local address; {HINT}"),
        ("http://[fe80::1]/x.jpg", f"fe80::1 is a link-local address; {HINT}"),
        ("http://[fd00::5]/x.jpg", f"fd00::5 is a private address; {HINT}"),
        ("http://0.0.0.0:{port}/a.jpg", "0.0.0.0 is an unspecified address, never fetched"),
        ("http://224.0.0.1/x.jpg", "224.0.0.1 is a multicast address, never fetched"),
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused_unasked(server: Server, url: str, detail: str) -> None:
    url = url.format(port=server.port)
    error = refused(url, settings())
    assert type(error) is ForbiddenSourceError
    assert str(error) == f"{url}: {detail}"
    assert error.reason == "forbidden_source"
    assert server.requests == []


@pytest.mark.parametrize("url", ["ftp://example.com/x.jpg", "gopher://example.com/x"])
def test_read_url_refuses_other_schemes(url: str) -> None:
    error = refused(url, settings())
    assert type(error) is ForbiddenSourceError
    scheme = url.partition(":")[0]
    assert error.detail == (
        f"unsupported URL scheme {scheme}://; use https://, http://, s3://, file:// or a path"
    )


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.jpg", "data:,x"])
def test_fetch_url_takes_only_http_and_https(url: str) -> None:
    with pytest.raises(ForbiddenSourceError) as caught:
        fetch_url(url, settings())
    scheme = url.partition(":")[0]
    assert caught.value.detail == f"{ONLY_HTTP} {scheme}:"


# ------------------------------------------------------------------------------------------
# redirects


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/to-file", f"redirected to file:///etc/passwd: {ONLY_HTTP} file:"),
        ("/to-ftp", f"redirected to ftp://example.com/photo.jpg: {ONLY_HTTP} ftp:"),
        ("/to-private", f"http://10.0.0.1/photo.jpg: 10.0.0.1 is a private address; {HINT}"),
        ("/to-metadata", "http://169.254.169.254/latest/meta-data/: "
         f"169.254.169.254 is a link-local address; {HINT}"),
        ("/to-ipv6-loopback", f"http://[::1]:{{port}}/photo.jpg: ::1 is a {LOOPBACK}"),
    ],
)  # fmt: skip
def test_every_redirect_hop_is_checked(server: Server, path: str, detail: str) -> None:
    error = refused(server.url(path), settings(**ONLY_127_0_0_1))
    assert type(error) is ForbiddenSourceError
    assert str(error) == f"{server.url(path)}: {detail.format(port=server.port)}"
    assert [p for p, _ in server.requests] == [path]  # the forbidden hop was never requested


def test_redirects_are_limited(server: Server) -> None:
    error = refused(server.url("/loop"), settings(**ALLOW_PRIVATE, source_url_max_redirects=2))
    assert type(error) is SourceFetchError
    assert error.detail == "more than 2 redirects"
    assert len(server.requests) == 3


def test_a_redirect_without_location_is_an_error(server: Server) -> None:
    error = refused(server.url("/no-location"), settings(**ALLOW_PRIVATE))
    assert type(error) is SourceFetchError
    assert error.detail == "HTTP 302 redirect without Location"


# ------------------------------------------------------------------------------------------
# size, time, status


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/big", f"Content-Length is {BIG:,} bytes, over the limit of {LIMIT:,} bytes"),
        ("/unsized", f"download passed the limit of {LIMIT:,} bytes: stopped"),
        ("/gzip-bomb", f"download passed the limit of {LIMIT:,} bytes: stopped"),
    ],
)
def test_bodies_over_the_size_limit_are_refused(server: Server, path: str, detail: str) -> None:
    error = refused(server.url(path), settings(**ALLOW_PRIVATE))
    assert type(error) is SourceTooLargeError
    assert (error.reason, error.detail) == ("source_too_large", detail)


def test_a_server_that_does_not_answer_times_out(server: Server) -> None:
    start = time.monotonic()
    error = refused(server.url("/slow"), settings(**ALLOW_PRIVATE, source_url_timeout=0.5))
    assert type(error) is SourceFetchError
    assert error.detail == "no answer within 0.5 s"
    assert time.monotonic() - start < 3


def test_a_dripping_download_is_stopped_at_the_deadline(server: Server) -> None:
    start = time.monotonic()
    error = refused(server.url("/drip"), settings(**ALLOW_PRIVATE, source_url_timeout=1.0))
    assert type(error) is SourceFetchError
    assert error.detail == "download took over 1 s: stopped"
    assert time.monotonic() - start < 3  # the whole body would take 20 s


def test_http_errors_are_typed(server: Server, tmp_path: Path) -> None:
    config = settings(**ALLOW_PRIVATE)
    with pytest.raises(ObjectNotFoundError):
        read_url(server.url("/gone"), settings=config)
    error = refused(server.url("/busy"), config)
    assert type(error) is SourceFetchError
    assert error.detail == "HTTP 503 Service Unavailable"
    request = ProductRequest(sku="GONE", source=server.url("/gone"), platforms=["shopify"])
    with pytest.raises(MissingSourceError, match="no such file or object"):
        load_source(request, config)


def test_a_refused_url_fails_its_product_with_the_reason_recorded(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "out")
    url = "http://10.0.0.7/photo.jpg"
    request = ProductRequest(sku="SSRF", source=url, platforms=["shopify"])
    result = run_product(request, wire(settings(store=store.url), store))
    expected = f"{url}: 10.0.0.7 is a private address; {HINT}"
    assert (result.status, result.reason, result.message) == (
        "failed",
        "forbidden_source",
        expected,
    )
    status = ProductStatus.model_validate_json(store.get("_status/SSRF.json"))
    assert (status.result.reason, status.result.message) == ("forbidden_source", expected)


# ------------------------------------------------------------------------------------------
# https: the connection goes to the checked address, the certificate is checked for the name


def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with a certificate for 'localhost', client context trusting its CA)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder(issuer_name=ca_name, subject_name=ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder(
            issuer_name=ca_name,
            subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
        )
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "leaf.pem").write_bytes(
        leaf.public_bytes(pem)
        + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "leaf.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server, client


def test_https_connects_to_the_checked_address_with_the_hosts_name(tmp_path: Path) -> None:
    server_tls, client_tls = tls_contexts(tmp_path)
    with Server(ROUTES, tls=server_tls) as server:
        url = server.url("/photo.jpg", host="localhost", scheme="https")
        assert fetch_url(url, settings(**ALLOW_PRIVATE), verify=client_tls) == PHOTO
        assert server.requests == [("/photo.jpg", f"localhost:{server.port}")]
        # The same server by address: its certificate names only 'localhost', so it is refused.
        by_address = server.url("/photo.jpg", scheme="https")
        with pytest.raises(SourceFetchError, match=r"cannot connect .*CERTIFICATE_VERIFY_FAILED"):
            fetch_url(by_address, settings(**ALLOW_PRIVATE), verify=client_tls)


# ------------------------------------------------------------------------------------------
# the address rule itself


NEVER = "{} address, never fetched"


@pytest.mark.parametrize(
    ("address", "default", "allow_private"),
    [
        ("93.184.216.34", None, None),
        ("2606:4700::1111", None, None),
        ("127.0.0.1", "a loopback address; " + HINT, None),
        ("::ffff:10.0.0.1", "a private address; " + HINT, None),
        ("172.16.5.4", "a private address; " + HINT, None),
        ("100.64.0.1", "a non-public address; " + HINT, None),
        ("fe80::1", "a link-local address; " + HINT, None),
        ("::", NEVER.format("an unspecified"), NEVER.format("an unspecified")),
        ("ff02::1", NEVER.format("a multicast"), NEVER.format("a multicast")),
        ("240.0.0.1", NEVER.format("a reserved"), NEVER.format("a reserved")),
        ("255.255.255.255", NEVER.format("a reserved"), NEVER.format("a reserved")),
    ],
)  # fmt: skip
def test_address_refusal(address: str, default: str | None, allow_private: str | None) -> None:
    ip = ipaddress.ip_address(address)
    assert address_refusal(ip, settings()) == default
    assert address_refusal(ip, settings(**ALLOW_PRIVATE)) == allow_private


def test_settings_read_allowed_networks_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRODUCT_IMAGES_SOURCE_URL_ALLOWED_NETWORKS", '["10.1.2.0/24"]')
    networks = Settings().sources.source_url_allowed_networks
    assert address_refusal(ipaddress.ip_address("10.1.2.3"), Settings()) is None
    assert address_refusal(ipaddress.ip_address("10.1.3.3"), Settings()) is not None
    assert [str(n) for n in networks] == ["10.1.2.0/24"]
