"""The operator starts in-process against KMock and writes a ModelProvider's status."""

from __future__ import annotations

from tests.conftest import eventually
from tests.support.kube import MP, obj


async def test_operator_writes_modelprovider_status(kube, operator):
    kube.objects[MP, "default", "local"] = obj(
        "ModelProvider", "local", api_version="inquest.dev/v1alpha1",
        spec={"baseURL": "http://127.0.0.1:9/v1", "model": "openai/tiny"},
    )

    def status_written():
        status = kube.objects[MP, "default", "local"]["status"]
        assert status["endpoint"] == "http://127.0.0.1:9/v1/chat/completions"
        assert status["observedGeneration"] == 1
        assert any(c["type"] == "Ready" for c in status["conditions"])
        return status

    status = await eventually(status_written)
    assert status["phase"] in ("NotReady", "Invalid", "Ready")


async def test_operator_marks_unusable_url_invalid(kube, operator):
    kube.objects[MP, "default", "bad"] = obj(
        "ModelProvider", "bad", api_version="inquest.dev/v1alpha1",
        spec={"baseURL": "http://llm:99999/v1", "model": "m"},  # the schema admits it; no usable port
    )

    def invalid():
        status = kube.objects[MP, "default", "bad"]["status"]
        assert status["phase"] == "Invalid"
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "InvalidURL")
        return True

    await eventually(invalid)
