"""The Kubernetes edge: configuration loading and a thread-offloaded JSON client.

The ``kubernetes`` package is synchronous; every call goes through a bounded thread pool so the
operator's event loop never blocks.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException

T = TypeVar("T")


class KubeConfigMissing(RuntimeError):
    """Neither an in-cluster service account nor a kubeconfig could be loaded."""


class KubeError(Exception):
    """A Kubernetes API error reduced to what callers need: status code and server message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @classmethod
    def from_api_exception(cls, exc: ApiException) -> KubeError:
        message = ""
        try:
            body = json.loads(exc.body or "{}")
            message = str(body.get("message", ""))
        except (ValueError, AttributeError):
            message = str(exc.body or "")[:500]
        return cls(int(exc.status or 0), str(exc.reason or ""), message)


def load_configuration(kubeconfig: str | None = None, context: str | None = None) -> kubernetes.client.Configuration:
    """In-cluster configuration first, then the kubeconfig (``$KUBECONFIG`` or ~/.kube/config)."""
    cfg = kubernetes.client.Configuration()
    if kubeconfig is None:
        try:
            kubernetes.config.load_incluster_config(client_configuration=cfg)
            return cfg
        except kubernetes.config.ConfigException:
            pass
    try:
        kubernetes.config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    except (kubernetes.config.ConfigException, OSError) as exc:
        raise KubeConfigMissing(
            "no Kubernetes configuration found: not running in a cluster and no usable kubeconfig "
            f"({exc}); set KUBECONFIG or pass --kubeconfig"
        ) from None
    return cfg


def bearer_token(cfg: kubernetes.client.Configuration) -> tuple[str | None, str | None]:
    """(scheme, token) from a client configuration, as kopf's own piggybacking reads it."""
    header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    if not parts:
        return None, None
    if len(parts) == 1:
        return None, parts[0]
    return parts[0], parts[1]


class KubeClient:
    """Raw JSON access to the Kubernetes API, off the event loop.

    ``impersonate`` (a username, e.g. ``system:serviceaccount:ns:name``) adds the Impersonate-User
    header so that the cluster's RBAC decides what the call may read.
    """

    def __init__(self, configuration: kubernetes.client.Configuration, *, max_workers: int = 16) -> None:
        self.configuration = configuration
        self.api = kubernetes.client.ApiClient(configuration)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="inquest-kube")

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.api.close()

    def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
        impersonate: str | None,
        response_type: str,
        timeout: float | None,
        content_type: str | None = None,
    ) -> Any:
        headers: dict[str, Any] = {"Accept": "application/json" if response_type == "object" else "*/*"}
        if content_type:
            headers["Content-Type"] = content_type
        if impersonate:
            # For a service account user the API server adds its groups (system:serviceaccounts,
            # system:serviceaccounts:<ns>, system:authenticated) itself when no group is given.
            headers["Impersonate-User"] = impersonate
        query_params = [(k, str(v).lower() if isinstance(v, bool) else v)
                        for k, v in (query or {}).items() if v is not None]
        try:
            method, url, header_params, body, _ = self.api.param_serialize(
                method,
                path,
                query_params=query_params,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(method, url, header_params=header_params, body=body,
                                         _request_timeout=timeout)
            response.read()
        except ApiException as exc:
            raise KubeError.from_api_exception(exc) from None
        text = (response.data or b"").decode("utf-8", "replace")
        if not 200 <= response.status < 300:
            raise KubeError.from_api_exception(ApiException(status=response.status, reason=response.reason,
                                                            body=text))
        if response_type == "str":
            content_type = str(response.getheader("Content-Type") or "")
            if "json" in content_type and text.startswith('"'):
                try:  # some servers (and emulators) send a log as a JSON string
                    return str(json.loads(text))
                except ValueError:
                    pass
            return text
        return json.loads(text) if text else None

    async def get_json(
        self,
        path: str,
        query: Mapping[str, Any] | None = None,
        *,
        impersonate: str | None = None,
        timeout: float | None = 30,
    ) -> Any:
        return await self.run(self._call, "GET", path, query, None, impersonate, "object", timeout)

    async def get_text(
        self,
        path: str,
        query: Mapping[str, Any] | None = None,
        *,
        impersonate: str | None = None,
        timeout: float | None = 30,
    ) -> str:
        return str(await self.run(self._call, "GET", path, query, None, impersonate, "str", timeout))

    async def send_json(self, method: str, path: str, body: Any, *, content_type: str | None = None) -> Any:
        return await self.run(self._call, method, path, None, body, None, "object", 30, content_type)

    async def read_secret(self, namespace: str, name: str) -> tuple[str, dict[str, bytes]] | None:
        """(type, decoded data) of a Secret, or None when it does not exist."""
        try:
            obj = await self.get_json(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
        data = {k: base64.b64decode(v or "") for k, v in (obj.get("data") or {}).items()}
        for k, v in (obj.get("stringData") or {}).items():  # never stored by a real server; KMock keeps it
            data.setdefault(k, str(v).encode())
        return str(obj.get("type") or "Opaque"), data

    async def read_configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            obj = await self.get_json(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
        data = {k: str(v) for k, v in (obj.get("data") or {}).items()}
        for k, v in (obj.get("binaryData") or {}).items():
            data.setdefault(k, base64.b64decode(v).decode("utf-8", "replace"))
        return data
