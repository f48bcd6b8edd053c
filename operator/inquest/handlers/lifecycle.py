"""Operator start-up, login and clean-up."""

from __future__ import annotations

from typing import Any

import kopf

from inquest import settings as operator_settings


@kopf.on.startup(id="operator_startup")
def operator_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    operator_settings.configure(settings)
    operator_settings.ensure_clients(memo)


@kopf.on.login(id="operator_login")
def operator_login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    return operator_settings.connection_info(operator_settings.ensure_clients(memo))


@kopf.on.cleanup(id="operator_cleanup")
def operator_cleanup(memo: kopf.Memo, **_: Any) -> None:
    clients = getattr(memo, "clients", None)
    if clients is not None:
        clients.close()
