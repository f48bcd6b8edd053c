"""Operator-wide Kopf settings, environment-driven configuration, and the Kubernetes login."""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from inquest import GROUP
from inquest.clients import Clients
from inquest.clients.kube import bearer_token

FINALIZER = f"{GROUP}/finalizer"


def configure(settings: kopf.OperatorSettings) -> None:
    """Keep Kopf's bookkeeping in our own annotations; status is ours alone."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Kopf would post an Event for every handler log line; we post meaningful Events ourselves.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = int(os.environ.get("INQUEST_WATCH_TIMEOUT", "300"))
    settings.networking.request_timeout = float(os.environ.get("INQUEST_REQUEST_TIMEOUT", "60"))
    settings.queueing.error_delays = (1, 2, 5, 10, 30)


def ensure_clients(memo: Any) -> Clients:
    """The clients from the memo, built from the environment when the memo has none."""
    clients = getattr(memo, "clients", None)
    if clients is None:
        clients = Clients.from_environment(os.environ.get("KUBECONFIG") or None)
        memo.clients = clients
    return clients


def connection_info(clients: Clients) -> kopf.ConnectionInfo:
    cfg = clients.kube.configuration
    scheme, token = bearer_token(cfg)
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        username=cfg.username or None,
        password=cfg.password or None,
        scheme=scheme,
        token=token,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
    )
