"""The Kopf entry point: ``kopf run -m inquest.main``. It only registers the handlers."""

from inquest.handlers import investigation, lifecycle, modelprovider  # noqa: F401
