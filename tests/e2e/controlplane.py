"""A real Kubernetes control plane (etcd + kube-apiserver) for end-to-end tests.

The kube-apiserver binary is built from Debian bookworm's ``kubernetes`` source
package by ``.ci/build-kube-apiserver.sh`` and cached in
``~/.cache/inquest/kube-apiserver-<debian source version>-<BUILD_TAG>``; etcd comes from
Debian's ``etcd-server`` package.

There is no controller-manager, no scheduler and no kubelet: whatever those
would do (default ServiceAccounts, namespace finalization, garbage collection,
Jobs creating Pods, Pods running) does not happen.  Tests write Pod status
themselves through the ``status`` subresource.

Usage::

    with ControlPlane() as cp:
        cp.kubeconfig_path, cp.server_url, cp.admin_token, cp.ca_file
        cp.create_namespace("demo")            # + its "default" ServiceAccount
        token = cp.token_for_service_account("demo", "robot")
        status, body = cp.request("GET", "/api/v1/namespaces", token=token)

Environment:
    INQUEST_KUBE_APISERVER  path of a kube-apiserver binary (skips the build)
    INQUEST_ETCD            path of an etcd binary (default: ``etcd`` on PATH)
    INQUEST_CACHE_DIR       cache directory (default: ~/.cache/inquest)
"""

from __future__ import annotations

import atexit
import base64
import datetime
import glob
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / ".ci" / "build-kube-apiserver.sh"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc"
READY_TIMEOUT = 60.0


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started."""


# --------------------------------------------------------------------------- #
# Locating binaries
# --------------------------------------------------------------------------- #


def cache_dir() -> Path:
    env = os.environ.get("INQUEST_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "inquest"


def build_tag() -> str:
    """The BUILD_TAG of .ci/build-kube-apiserver.sh: binaries cached by older revisions are not used."""
    match = re.search(r"^BUILD_TAG=(\S+)\s*$", BUILD_SCRIPT.read_text(), re.MULTILINE)
    if not match:
        raise ControlPlaneError(f"no BUILD_TAG= line in {BUILD_SCRIPT}")
    return match.group(1)


def _cached_apiserver() -> Path | None:
    candidates = [
        Path(p)
        for p in glob.glob(str(cache_dir() / f"kube-apiserver-*-{build_tag()}"))
        if not p.endswith(".tmp") and os.path.isfile(p) and os.access(p, os.X_OK)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime)


def run_build_script() -> Path:
    """Run .ci/build-kube-apiserver.sh (installs apt packages, builds if needed)."""
    if not BUILD_SCRIPT.is_file():
        raise ControlPlaneError(f"build script not found: {BUILD_SCRIPT}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or "").splitlines()[-40:])
        raise ControlPlaneError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}); stderr tail:\n{tail}")
    path = Path(lines[-1].strip())
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ControlPlaneError(f"build script printed {path!s}, which is not an executable")
    return path


def find_apiserver(build: bool = True) -> Path:
    env = os.environ.get("INQUEST_KUBE_APISERVER")
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ControlPlaneError(f"INQUEST_KUBE_APISERVER={env} is not an executable file")
        return path
    cached = _cached_apiserver()
    if cached is not None:
        return cached
    if not build:
        raise ControlPlaneError("no cached kube-apiserver binary and build=False")
    return run_build_script()


def find_etcd(build: bool = True) -> Path:
    env = os.environ.get("INQUEST_ETCD")
    if env:
        return Path(env)
    found = shutil.which("etcd")
    if found:
        return Path(found)
    if build:
        run_build_script()  # installs etcd-server
        found = shutil.which("etcd")
        if found:
            return Path(found)
    raise ControlPlaneError("etcd not found (apt-get install etcd-server)")


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(data.splitlines()[-lines:])


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chmod(path, 0o600)


def _make_pki(directory: Path) -> dict[str, Path]:
    """A CA, a serving certificate for 127.0.0.1/localhost, and a service-account key."""
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=2)

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "inquest-e2e-ca")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    srv_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    srv_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes"),
                    x509.DNSName("kubernetes.default"),
                    x509.DNSName("kubernetes.default.svc"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(srv_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def key_pem(key: rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    paths = {
        "ca": directory / "ca.crt",
        "tls_cert": directory / "apiserver.crt",
        "tls_key": directory / "apiserver.key",
        "sa_key": directory / "sa.key",
        "sa_pub": directory / "sa.pub",
    }
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["tls_cert"].write_bytes(
        srv_cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    _write_private(paths["tls_key"], key_pem(srv_key))
    _write_private(paths["sa_key"], key_pem(sa_key))
    paths["sa_pub"].write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return paths


# --------------------------------------------------------------------------- #
# The control plane
# --------------------------------------------------------------------------- #


class ControlPlane:
    """etcd + kube-apiserver on free loopback ports, in a temporary directory."""

    def __init__(
        self,
        *,
        apiserver_binary: os.PathLike | str | None = None,
        etcd_binary: os.PathLike | str | None = None,
        extra_apiserver_args: tuple[str, ...] | list[str] = (),
        ready_timeout: float = READY_TIMEOUT,
        build: bool = True,
    ) -> None:
        self._apiserver_binary = Path(apiserver_binary) if apiserver_binary else None
        self._etcd_binary = Path(etcd_binary) if etcd_binary else None
        self._extra_args = list(extra_apiserver_args)
        self._ready_timeout = ready_timeout
        self._build = build

        self.tmpdir: Path | None = None
        self.kubeconfig_path: str | None = None
        self.server_url: str | None = None
        self.admin_token: str = secrets.token_hex(24)
        self.ca_file: str | None = None
        self.etcd_url: str | None = None
        self.apiserver_log: Path | None = None
        self.etcd_log: Path | None = None
        self._etcd: subprocess.Popen | None = None
        self._apiserver: subprocess.Popen | None = None
        self._ssl: ssl.SSLContext | None = None
        self._atexit_registered = False

    # ---- lifecycle ---------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._apiserver is not None and self._apiserver.poll() is None

    def start(self) -> ControlPlane:
        if self._apiserver is not None:
            raise ControlPlaneError("already started")
        apiserver = self._apiserver_binary or find_apiserver(build=self._build)
        etcd = self._etcd_binary or find_etcd(build=self._build)

        last_error: Exception | None = None
        for _attempt in range(3):  # retry only on a lost free-port race
            self.tmpdir = Path(tempfile.mkdtemp(prefix="inquest-e2e-"))
            if not self._atexit_registered:
                atexit.register(self.stop)
                self._atexit_registered = True
            try:
                self._start_once(apiserver, etcd)
                return self
            except ControlPlaneError as exc:
                last_error = exc
                in_use = "address already in use" in str(exc).lower()
                self.stop()
                if not in_use:
                    raise
            except BaseException:
                self.stop()
                raise
        assert last_error is not None
        raise last_error

    def _start_once(self, apiserver: Path, etcd: Path) -> None:
        assert self.tmpdir is not None
        tmp = self.tmpdir
        etcd_client, etcd_peer, secure_port = _free_ports(3)

        # --- etcd ---
        self.etcd_url = f"http://127.0.0.1:{etcd_client}"
        peer_url = f"http://127.0.0.1:{etcd_peer}"
        self.etcd_log = tmp / "etcd.log"
        etcd_env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        with open(self.etcd_log, "wb") as log:
            self._etcd = subprocess.Popen(
                [
                    str(etcd),
                    "--name=inquest-e2e",
                    f"--data-dir={tmp / 'etcd-data'}",
                    f"--listen-client-urls={self.etcd_url}",
                    f"--advertise-client-urls={self.etcd_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster=inquest-e2e={peer_url}",
                    "--initial-cluster-state=new",
                    "--logger=zap",
                    "--log-outputs=stderr",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=etcd_env,
                start_new_session=True,
            )
        self._wait_etcd()

        # --- PKI, tokens ---
        pki_dir = tmp / "pki"
        pki_dir.mkdir()
        pki = _make_pki(pki_dir)
        self.ca_file = str(pki["ca"])
        tokens = tmp / "tokens.csv"
        _write_private(tokens, f'{self.admin_token},admin,admin-uid,"system:masters"\n'.encode())

        # --- kube-apiserver ---
        self.server_url = f"https://127.0.0.1:{secure_port}"
        self.apiserver_log = tmp / "kube-apiserver.log"
        args = [
            str(apiserver),
            f"--etcd-servers={self.etcd_url}",
            f"--secure-port={secure_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # a loopback address is not a valid Endpoints IP: do not reconcile
            # the "kubernetes" Service's endpoints (no error every 10 s)
            "--endpoint-reconciler-type=none",
            f"--cert-dir={tmp / 'certs'}",
            f"--tls-cert-file={pki['tls_cert']}",
            f"--tls-private-key-file={pki['tls_key']}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={pki['sa_pub']}",
            f"--service-account-signing-key-file={pki['sa_key']}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--api-audiences={SERVICE_ACCOUNT_ISSUER}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
            *self._extra_args,
        ]
        with open(self.apiserver_log, "wb") as log:
            self._apiserver = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        self._ssl = ssl.create_default_context(cafile=self.ca_file)
        self._wait_ready()
        self.kubeconfig_path = str(tmp / "kubeconfig")
        self.write_kubeconfig(self.kubeconfig_path, self.admin_token, user="admin")

    def _wait_etcd(self) -> None:
        assert self._etcd is not None and self.etcd_log is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._etcd.poll() is not None:
                raise ControlPlaneError(f"etcd exited with {self._etcd.returncode}; log tail:\n{_tail(self.etcd_log)}")
            try:
                with urllib.request.urlopen(self.etcd_url + "/health", timeout=2) as resp:
                    if json.loads(resp.read()).get("health") == "true":
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise ControlPlaneError(f"etcd not healthy within 30 s; log tail:\n{_tail(self.etcd_log)}")

    def _wait_ready(self) -> None:
        assert self._apiserver is not None and self.apiserver_log is not None
        deadline = time.monotonic() + self._ready_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self._apiserver.poll() is not None:
                raise ControlPlaneError(
                    f"kube-apiserver exited with {self._apiserver.returncode}; log tail:\n{_tail(self.apiserver_log)}"
                )
            try:
                status, body = self.request("GET", "/readyz", timeout=5)
                if status == 200:
                    # the system namespaces are created by a bootstrap controller
                    status, body = self.request("GET", "/api/v1/namespaces/default", timeout=5)
                    if status == 200:
                        return
                last = f"HTTP {status}: {str(body)[-500:]}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.25)
        raise ControlPlaneError(
            f"kube-apiserver not ready within {self._ready_timeout:.0f} s (last: {last}); "
            f"log tail:\n{_tail(self.apiserver_log)}"
        )

    def stop(self) -> None:
        for attr in ("_apiserver", "_etcd"):
            proc: subprocess.Popen | None = getattr(self, attr)
            if proc is None:
                continue
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
                except ProcessLookupError:
                    pass
            setattr(self, attr, None)
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    # ---- access --------------------------------------------------------------

    def kubeconfig_dict(self, token: str, user: str = "admin") -> dict:
        assert self.server_url and self.ca_file
        ca_data = base64.b64encode(Path(self.ca_file).read_bytes()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "inquest-e2e",
                    "cluster": {"server": self.server_url, "certificate-authority-data": ca_data},
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": f"{user}@inquest-e2e", "context": {"cluster": "inquest-e2e", "user": user}}],
            "current-context": f"{user}@inquest-e2e",
            "preferences": {},
        }

    def write_kubeconfig(self, path: os.PathLike | str, token: str, user: str = "admin") -> str:
        """Write a kubeconfig for ``token`` (e.g. a ServiceAccount token) to ``path``."""
        Path(path).write_text(yaml.safe_dump(self.kubeconfig_dict(token, user), sort_keys=False))
        os.chmod(path, 0o600)
        return str(path)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        content_type: str = "application/json",
        timeout: float = 30,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """A raw HTTPS request; returns (status, parsed JSON or text). Never raises on HTTP errors.

        ``token`` defaults to the admin token; pass ``token=""`` for an anonymous request.
        ``headers`` are added last (e.g. another ``Accept``).
        """
        assert self.server_url and self._ssl is not None
        data = None
        sent = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            sent["Content-Type"] = content_type
        tok = self.admin_token if token is None else token
        if tok:
            sent["Authorization"] = f"Bearer {tok}"
        req = urllib.request.Request(self.server_url + path, data=data, headers=sent, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._ssl) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        text = raw.decode("utf-8", "replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def _ok(self, status: int, body: Any, what: str, allow: tuple[int, ...] = ()) -> Any:
        if 200 <= status < 300 or status in allow:
            return body
        raise ControlPlaneError(f"{what}: HTTP {status}: {body}")

    def create_namespace(self, name: str, *, default_service_account: bool = True) -> None:
        """Create a namespace (409 tolerated) and, as the absent controller-manager
        would, its ``default`` ServiceAccount (the ServiceAccount admission plugin
        refuses Pods whose ServiceAccount does not exist)."""
        st, body = self.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
        self._ok(st, body, f"create namespace {name}", allow=(409,))
        if default_service_account:
            self.create_service_account(name, "default")

    def create_service_account(self, namespace: str, name: str) -> None:
        st, body = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        )
        self._ok(st, body, f"create serviceaccount {namespace}/{name}", allow=(409,))

    def token_for_service_account(
        self,
        namespace: str,
        name: str,
        *,
        expiration_seconds: int = 3600,
        audiences: list[str] | None = None,
    ) -> str:
        """A bearer token for a ServiceAccount, from the TokenRequest API."""
        spec: dict[str, Any] = {"expirationSeconds": expiration_seconds}
        if audiences is not None:
            spec["audiences"] = audiences
        st, body = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )
        body = self._ok(st, body, f"TokenRequest for {namespace}/{name}")
        return body["status"]["token"]

    def api_client(self, token: str | None = None):
        """A ``kubernetes.client.ApiClient`` for ``token`` (default: the admin)."""
        import kubernetes

        assert self.server_url and self.ca_file
        cfg = kubernetes.client.Configuration()
        cfg.host = self.server_url
        cfg.ssl_ca_cert = self.ca_file
        cfg.verify_ssl = True
        cfg.api_key = {"authorization": self.admin_token if token is None else token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        return kubernetes.client.ApiClient(cfg)
