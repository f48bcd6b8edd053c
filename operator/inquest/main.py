"""The Kopf entry point: ``kopf run -m inquest.main``. It only registers the handlers."""

# Order matters: Kopf runs cleanup handlers in registration order, so modelprovider's
# cleanup stops the prober before lifecycle's cleanup closes the clients the prober uses.
from inquest.handlers import investigation, modelprovider  # noqa: F401, I001
from inquest.handlers import lifecycle  # noqa: F401, I001
