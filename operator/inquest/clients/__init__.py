"""Every network edge of the operator. Handlers reach them only through ``memo.clients``."""

from __future__ import annotations

from dataclasses import dataclass

from inquest.clients.kube import KubeClient, KubeConfigMissing, KubeError, load_configuration

__all__ = ["Clients", "KubeClient", "KubeConfigMissing", "KubeError", "load_configuration"]


@dataclass
class Clients:
    """What the handlers may talk to. Tests build one pointing at KMock and the fake LLM."""

    kube: KubeClient

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None, context: str | None = None) -> Clients:
        return cls(kube=KubeClient(load_configuration(kubeconfig, context)))

    def close(self) -> None:
        self.kube.close()
