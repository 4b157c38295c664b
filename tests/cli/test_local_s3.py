import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import boto3
from botocore.config import Config
from click.testing import CliRunner

from product_images.cli.main import main
from product_images.testing.seaweedfs import free_ports
from tests.support.polling import wait_until

PROGRAM = str(Path(sys.executable).parent / "product-images")


def test_upload_puts_the_photo_where_serve_looks(photo, tmp_path):
    store = tmp_path / "store"
    result = CliRunner().invoke(
        main, ["upload", str(photo), "--sku", "SKU-9", "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    assert (store / "incoming" / "SKU-9.jpg").read_bytes() == photo.read_bytes()
    assert f"{store}/incoming/SKU-9.jpg" in result.output.replace("file://", "")


def test_upload_refuses_an_unsafe_sku(photo, tmp_path):
    result = CliRunner().invoke(
        main, ["upload", str(photo), "--sku", "../etc", "--store", str(tmp_path)]
    )
    assert result.exit_code == 1 and "not usable as a storage key" in result.output
    assert not list(tmp_path.rglob("*.jpg"))


def _exports(output: str) -> dict[str, str]:
    return dict(re.findall(r"^export (\w+)=(\S+)$", output, re.MULTILINE))


def test_local_s3_gives_a_bucket_and_the_variables_to_use_it(photo, tmp_path):
    (port,) = free_ports(1)
    log = tmp_path / "local-s3.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                PROGRAM,
                "local-s3",
                "--bucket",
                "shop",
                "--port",
                str(port),
                "--dir",
                str(tmp_path / "data"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: "Ctrl-C" in log.read_text(),
            timeout=90,
            describe=log.read_text,
            alive=lambda: process.poll() is None,
        )
        env = _exports(log.read_text())
        assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
        assert env["PRODUCT_IMAGES_STORE"] == "s3://shop/out"
        upload = subprocess.run(
            [PROGRAM, "upload", str(photo), "--sku", "SKU-1"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert upload.returncode == 0, upload.stderr
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        body = s3.get_object(Bucket="shop", Key="out/incoming/SKU-1.jpg")["Body"].read()
        assert body == photo.read_bytes()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "data")], capture_output=True, text=True)
    assert not left.stdout.strip(), "weed still running after local-s3 stopped"
