"""Inquest: ask your Kubernetes cluster questions through any OpenAI-compatible LLM."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("inquest")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

GROUP = "inquest.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
