"""``inquest check`` and ``inquest ask`` against KMock and the fake LLM (over HTTP and TLS).

The commands run in the test's event loop (``check_command``/``ask_command``) so that KMock and the
fake LLM keep serving; two tests run the real ``python -m inquest`` in a subprocess for exit codes.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from inquest.cli import UsageError, _build_parser, ask_command, check_command
from tests.support.fake_llm import FakeLLM, fault, text, tool_call
from tests.support.kube import obj

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-canary-4f1d2c9a"


def kubeconfig(tmp_path: Path, kube: Any, namespace: str | None = None) -> str:
    context: dict[str, Any] = {"cluster": "kmock", "user": "tester"}
    if namespace:
        context["namespace"] = namespace
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "kmock",
           "clusters": [{"name": "kmock", "cluster": {"server": str(kube.url).rstrip("/")}}],
           "users": [{"name": "tester", "user": {"token": "t"}}],
           "contexts": [{"name": "kmock", "context": context}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def provider_file(tmp_path: Path, spec: dict[str, Any], *extra: dict[str, Any], name: str = "provider.yaml") -> str:
    docs = [{"apiVersion": "inquest.dev/v1alpha1", "kind": "ModelProvider",
             "metadata": {"name": "local", "namespace": "default"}, "spec": spec}, *extra]
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def secret(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"},
            "stringData": data}


async def run(command: Any, argv: list[str]) -> tuple[int, str, str]:
    args = _build_parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code = await command(args, out, err)
    return code, out.getvalue(), err.getvalue()


def conditions_of(output: str) -> dict[str, tuple[str, str]]:
    """CONDITION -> (STATUS, REASON) from check's table."""
    rows = {}
    lines = output.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("CONDITION"))
    for line in lines[start + 1:]:
        if not line.strip():
            break
        cond, status, reason = line.split()[:3]
        rows[cond] = (status, reason)
    return rows


# --------------------------------------------------------------------------- check


async def test_check_passes_against_a_working_endpoint(tmp_path, llm_factory):
    llm = await llm_factory(api_key=KEY)
    path = provider_file(tmp_path, {"baseURL": llm.base_url, "model": "test-model",
                                    "apiKeySecretRef": {"name": "llm-key", "key": "api-key"}},
                         secret("llm-key", **{"api-key": KEY}))
    code, out, err = await run(check_command, ["check", "-f", path, "--kubeconfig", str(tmp_path / "none")])
    assert code == 0, out + err
    conds = conditions_of(out)
    assert conds["Ready"] == ("True", "ProviderReady")
    assert conds["ToolCallingSupported"] == ("True", "ToolCallsReturned")
    assert conds["Authenticated"] == ("True", "Authenticated")
    assert out.rstrip().endswith("Ready")
    assert f"{llm.base_url}/chat/completions" in out
    assert KEY not in out + err
    assert any(r.header("authorization") == f"Bearer {KEY}" for r in llm.requests)


async def test_check_fails_on_a_wrong_key_and_says_so(tmp_path, llm_factory):
    llm = await llm_factory(api_key="sk-the-right-one")
    path = provider_file(tmp_path, {"baseURL": llm.base_url, "model": "test-model",
                                    "apiKeySecretRef": {"name": "llm-key", "key": "api-key"}},
                         secret("llm-key", **{"api-key": KEY}))
    code, out, err = await run(check_command, ["check", "-f", path, "--kubeconfig", str(tmp_path / "none")])
    assert code == 1
    conds = conditions_of(out)
    assert conds["Authenticated"] == ("False", "InvalidAPIKey")
    assert conds["Ready"] == ("False", "InvalidAPIKey")
    assert conds["ModelAvailable"][0] == "Unknown"
    assert out.rstrip().endswith("NotReady")
    assert KEY not in out + err and "sk-the-right-one" not in out + err


async def test_check_reads_missing_secrets_from_the_cluster(tmp_path, kube, llm_factory):
    llm = await llm_factory(api_key=KEY)
    kube.objects["v1/secrets", "default", "llm-key"] = obj("Secret", "llm-key", stringData={"api-key": KEY})
    path = provider_file(tmp_path, {"baseURL": llm.base_url, "model": "test-model",
                                    "apiKeySecretRef": {"name": "llm-key", "key": "api-key"}})
    code, out, _ = await run(check_command, ["check", "-f", path, "--kubeconfig", kubeconfig(tmp_path, kube)])
    assert code == 0, out
    assert conditions_of(out)["SecretsResolved"] == ("True", "SecretsFound")


async def test_check_without_the_secret_anywhere(tmp_path, llm):
    path = provider_file(tmp_path, {"baseURL": llm.base_url, "model": "test-model",
                                    "apiKeySecretRef": {"name": "llm-key", "key": "api-key"}})
    code, out, err = await run(check_command, ["check", "-f", path, "--kubeconfig", str(tmp_path / "none")])
    assert code == 1
    assert conditions_of(out)["SecretsResolved"] == ("False", "SecretNotFound")
    assert "could not be read from a cluster" in err
    assert not llm.requests, "nothing is sent before the Secrets resolve"


async def test_check_with_a_private_ca_from_a_secret_and_without_it(tmp_path, llm_tls, pki):
    pem = pki.ca.cert_pem.decode() if isinstance(pki.ca.cert_pem, bytes) else pki.ca.cert_pem
    ca = secret("llm-ca", **{"ca.crt": pem})
    spec = {"baseURL": llm_tls.base_url, "model": "test-model",
            "tls": {"caSecretRef": {"name": "llm-ca", "key": "ca.crt"}, "useSystemTrustStore": False}}
    code, out, _ = await run(check_command, ["check", "-f", provider_file(tmp_path, spec, ca),
                                             "--kubeconfig", str(tmp_path / "none")])
    assert code == 0, out
    assert conditions_of(out)["CertificateValid"] == ("True", "CertificateTrusted")
    no_ca = {"baseURL": llm_tls.base_url, "model": "test-model"}
    code, out, _ = await run(check_command, ["check", "-f", provider_file(tmp_path, no_ca, name="b.yaml"),
                                             "--kubeconfig", str(tmp_path / "none")])
    assert code == 1
    assert conditions_of(out)["CertificateValid"] == ("False", "UnknownAuthority")


async def test_check_reports_a_server_that_ignores_tools(tmp_path, llm_factory):
    llm = await llm_factory(ignores_tools=True)
    path = provider_file(tmp_path, {"baseURL": llm.base_url, "model": "test-model"})
    code, out, _ = await run(check_command, ["check", "-f", path, "--kubeconfig", str(tmp_path / "none")])
    assert code == 1
    assert conditions_of(out)["ToolCallingSupported"] == ("False", "ToolCallsIgnored")


async def test_check_output_json_is_the_status(tmp_path, llm):
    path = provider_file(tmp_path, {"baseURL": llm.base_url, "model": "test-model"})
    code, out, _ = await run(check_command, ["check", "-f", path, "-o", "json", "--kubeconfig",
                                             str(tmp_path / "none")])
    assert code == 0
    doc = json.loads(out)
    assert doc["status"]["phase"] == "Ready"
    assert {c["type"] for c in doc["status"]["conditions"]} >= {"Ready", "ToolCallingSupported"}
    assert doc["status"]["availableModels"] == ["test-model"]


async def test_check_output_yaml_is_the_status(tmp_path, llm):
    path = provider_file(tmp_path, {"baseURL": llm.base_url, "model": "test-model"})
    code, out, _ = await run(check_command, ["check", "-f", path, "-o", "yaml", "--kubeconfig",
                                             str(tmp_path / "none")])
    assert code == 0, out
    assert out.startswith("apiVersion: inquest.dev/v1alpha1\n"), out  # block YAML, not JSON (also YAML)
    doc = yaml.safe_load(out)
    assert doc["kind"] == "ModelProvider" and doc["apiVersion"] == "inquest.dev/v1alpha1"
    assert doc["metadata"] == {"name": "local", "namespace": "default"}
    assert doc["status"]["phase"] == "Ready"
    assert doc["status"]["endpoint"] == f"{llm.base_url}/chat/completions"
    ready = next(c for c in doc["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "ProviderReady")


@pytest.mark.parametrize("argv, context_ns, where", [
    (["--namespace", "team-a"], None, "team-a"),
    (["--namespace", "team-a"], "default", "team-a"),  # the flag wins over the kubeconfig's namespace
    ([], "team-a", "team-a"),
    ([], None, "default"),
])
async def test_check_namespace_of_a_manifest_without_one(tmp_path, kube, llm_factory, argv, context_ns, where):
    """The provider's Secret is looked up in --namespace, else the context's namespace, else default."""
    llm = await llm_factory(api_key=KEY)
    kube.objects["v1/namespaces", None, "team-a"] = {"metadata": {"name": "team-a"}}
    kube.objects["v1/secrets", "team-a", "llm-key"] = obj("Secret", "llm-key", "team-a",
                                                          stringData={"api-key": KEY})
    path = tmp_path / "provider.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "inquest.dev/v1alpha1", "kind": "ModelProvider",
                                    "metadata": {"name": "local"},
                                    "spec": {"baseURL": llm.base_url, "model": "test-model",
                                             "apiKeySecretRef": {"name": "llm-key", "key": "api-key"}}}))
    code, out, _ = await run(check_command, ["check", "-f", str(path), *argv, "-o", "yaml",
                                             "--kubeconfig", kubeconfig(tmp_path, kube, namespace=context_ns)])
    doc = yaml.safe_load(out)
    assert doc["metadata"]["namespace"] == where
    secrets = next(c for c in doc["status"]["conditions"] if c["type"] == "SecretsResolved")
    if where == "team-a":
        assert code == 0, out
        assert (secrets["status"], secrets["reason"]) == ("True", "SecretsFound")
    else:
        assert code == 1
        assert (secrets["status"], secrets["reason"]) == ("False", "SecretNotFound")
        assert "default" in secrets["message"]


async def test_check_refuses_a_file_without_exactly_one_provider(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(secret("x", a="b")))
    with pytest.raises(UsageError, match="exactly one ModelProvider, found 0"):
        await run(check_command, ["check", "-f", str(path), "--kubeconfig", str(tmp_path / "none")])


# --------------------------------------------------------------------------- ask


@pytest.fixture
def broken_pod(kube):
    kube.objects["v1/pods", "default", "checkout-1"] = obj(
        "Pod", "checkout-1", spec={"containers": [{"name": "app", "image": "shop/checkout:1.4"}]},
        status={"phase": "Running", "containerStatuses": [{
            "name": "app", "ready": False, "restartCount": 7,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]})
    kube["get /api/v1/namespaces/default/pods/checkout-1/log"] << "FATAL: DATABASE_URL is not set\n"
    return "checkout-1"


FINDINGS = {
    "summary": "checkout-1 crash-loops: DATABASE_URL is not set",
    "answer": "The pod checkout-1 exits at start because DATABASE_URL is not set.",
    "findings": [{"severity": "critical", "title": "DATABASE_URL missing",
                  "resource": {"kind": "Pod", "name": "checkout-1", "namespace": "default"},
                  "evidence": ["FATAL: DATABASE_URL is not set"], "remediation": "set DATABASE_URL"}],
}


def _script_investigation(llm: FakeLLM) -> None:
    llm.script(tool_call("list_resources", {"kind": "pods"}),
               tool_call("pod_logs", {"pod": "checkout-1", "previous": True}),
               tool_call("submit_findings", FINDINGS))


@pytest.fixture
def holmes_env(monkeypatch):
    for name in ("OPENAI_API_BASE", "OPENAI_API_KEY", "CERTIFICATE", "MODEL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_ask_from_holmesgpt_environment(tmp_path, kube, llm_factory, broken_pod, holmes_env):
    llm = await llm_factory(api_key=KEY)
    holmes_env.setenv("OPENAI_API_BASE", llm.base_url)
    holmes_env.setenv("OPENAI_API_KEY", KEY)
    _script_investigation(llm)
    code, out, err = await run(ask_command, ["ask", "why does checkout fail?", "--model", "openai/test-model",
                                             "--kubeconfig", kubeconfig(tmp_path, kube)])
    assert code == 0, err
    assert "exits at start because DATABASE_URL is not set" in out
    assert "[critical] DATABASE_URL missing" in out and "resource: Pod default/checkout-1" in out
    assert "(Succeeded: 3 step(s), 3 tool call(s)" in out
    # progress: each tool call on stderr, in order, with its result size
    assert err.index("→ list_resources") < err.index("← list_resources") < err.index("→ pod_logs")
    assert "← pod_logs:" in err and "chars" in err
    # the same agent: the model saw the real tool output and got the openai/ prefix stripped
    chats = llm.chat_requests
    assert all(c["model"] == "test-model" for c in chats)
    tool_results = [m["content"] for m in chats[-1]["messages"] if m["role"] == "tool"]
    assert "checkout-1" in tool_results[0] and "CrashLoopBackOff" in tool_results[0]
    assert "FATAL: DATABASE_URL is not set" in tool_results[1]
    assert KEY not in out + err


async def test_ask_json_output_and_namespace_from_the_context(tmp_path, kube, llm, broken_pod, holmes_env):
    holmes_env.setenv("OPENAI_API_BASE", llm.base_url)
    holmes_env.setenv("MODEL", "test-model")
    _script_investigation(llm)
    code, out, _ = await run(ask_command, ["ask", "why?", "-o", "json", "-q",
                                           "--kubeconfig", kubeconfig(tmp_path, kube, namespace="default")])
    assert code == 0
    result = json.loads(out)
    assert result["phase"] == "Succeeded" and result["namespaces"] == ["default"]
    assert result["findingCount"] == 1 and result["findings"][0]["resource"]["name"] == "checkout-1"
    assert [t["name"] for t in result["toolCalls"]] == ["list_resources", "pod_logs", "submit_findings"]
    assert result["usage"]["totalTokens"] > 0


@pytest.fixture
def shop_pod(kube):
    """A crash-looping pod in namespace ``shop`` (besides ``default``'s broken_pod when both are used)."""
    kube.objects["v1/namespaces", None, "shop"] = {"metadata": {"name": "shop"}}
    kube.objects["v1/pods", "shop", "cart-1"] = obj(
        "Pod", "cart-1", "shop", spec={"containers": [{"name": "app", "image": "shop/cart:2"}]},
        status={"phase": "Running", "containerStatuses": [{
            "name": "app", "ready": False, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]})
    return "cart-1"


@pytest.mark.parametrize("argv, context_ns, namespaces, scope", [
    (["-n", "shop"], None, ["shop"], "shop"),
    (["--namespace", "shop"], "default", ["shop"], "shop"),  # the flag wins over the kubeconfig's namespace
    (["-A"], "default", ["*"], "all namespaces"),
    (["--all-namespaces"], None, ["*"], "all namespaces"),
    ([], "shop", ["shop"], "shop"),
    ([], None, ["default"], "default"),
])
async def test_ask_namespace_scope(tmp_path, kube, llm, broken_pod, shop_pod, holmes_env,
                                   argv, context_ns, namespaces, scope):
    """-n/--namespace, -A/--all-namespaces and the kubeconfig's namespace decide what the tools read."""
    holmes_env.setenv("OPENAI_API_BASE", llm.base_url)
    llm.script(tool_call("list_resources", {"kind": "pods"}), text("done"))
    code, out, err = await run(ask_command, ["ask", "why?", "--model", "test-model", *argv, "-o", "json",
                                             "--kubeconfig", kubeconfig(tmp_path, kube, namespace=context_ns)])
    assert code == 0, err
    assert json.loads(out)["namespaces"] == namespaces
    assert f"about {scope}\n" in err
    first = llm.chat_requests[0]["messages"]
    assert f"Namespaces in scope: {scope}." in next(m["content"] for m in first if m["role"] == "user")
    listed = next(m["content"] for m in llm.chat_requests[-1]["messages"] if m["role"] == "tool")
    assert ("cart-1" in listed) == ("shop" in namespaces or "*" in namespaces), listed
    assert ("checkout-1" in listed) == ("default" in namespaces or "*" in namespaces), listed


async def test_ask_with_certificate_over_tls(tmp_path, kube, llm_tls, pki, broken_pod, holmes_env):
    holmes_env.setenv("OPENAI_API_BASE", llm_tls.base_url)
    holmes_env.setenv("CERTIFICATE", pki.ca.b64_pem)
    llm_tls.script(text("Nothing is wrong."))
    code, out, err = await run(ask_command, ["ask", "anything wrong?", "--model", "test-model",
                                             "--kubeconfig", kubeconfig(tmp_path, kube)])
    assert code == 0, err
    assert "Nothing is wrong." in out


async def test_ask_with_a_provider_file(tmp_path, kube, llm_factory, broken_pod, holmes_env):
    llm = await llm_factory(api_key=KEY)
    kube.objects["v1/secrets", "default", "llm-key"] = obj("Secret", "llm-key", stringData={"api-key": KEY})
    path = provider_file(tmp_path, {"baseURL": llm.base_url, "model": "test-model",
                                    "apiKeySecretRef": {"name": "llm-key", "key": "api-key"},
                                    "parameters": {"contextWindow": 16384}})
    _script_investigation(llm)
    code, out, err = await run(ask_command, ["ask", "why?", "--provider", path,
                                             "--kubeconfig", kubeconfig(tmp_path, kube)])
    assert code == 0, err
    assert "DATABASE_URL" in out


@pytest.mark.parametrize("argv, sent", [([], "test-model"), (["--model", "openai/other-model"], "other-model")])
async def test_ask_model_flag_overrides_the_provider_file(tmp_path, kube, llm_factory, holmes_env, argv, sent):
    llm = await llm_factory(models=("test-model", "other-model"))
    holmes_env.setenv("MODEL", "from-the-environment")  # a provider file ignores it
    path = provider_file(tmp_path, {"baseURL": llm.base_url, "model": "test-model"})
    llm.script(text("Nothing is wrong."))
    code, out, err = await run(ask_command, ["ask", "why?", "--provider", path, *argv, "-o", "yaml",
                                             "--kubeconfig", kubeconfig(tmp_path, kube)])
    assert code == 0, err
    result = yaml.safe_load(out)
    assert result["model"] == sent
    assert [c["model"] for c in llm.chat_requests] == [sent]
    assert f"asking {sent} at {llm.base_url}/chat/completions" in err


async def test_ask_output_yaml(tmp_path, kube, llm, broken_pod, holmes_env):
    holmes_env.setenv("OPENAI_API_BASE", llm.base_url)
    _script_investigation(llm)
    code, out, err = await run(ask_command, ["ask", "why does checkout fail?", "--model", "test-model",
                                             "-o", "yaml", "--kubeconfig", kubeconfig(tmp_path, kube)])
    assert code == 0, err
    assert out.startswith("question: why does checkout fail?\n"), out  # block YAML, not JSON (also YAML)
    result = yaml.safe_load(out)
    assert result["question"] == "why does checkout fail?"
    assert result["phase"] == "Succeeded" and result["model"] == "test-model"
    assert result["namespaces"] == ["default"]
    assert result["answer"] == FINDINGS["answer"]
    (finding,) = result["findings"]
    assert finding["resource"] == {"kind": "Pod", "name": "checkout-1", "namespace": "default"}
    assert finding["severity"] == "critical"
    assert [t["name"] for t in result["toolCalls"]] == ["list_resources", "pod_logs", "submit_findings"]
    assert "→ list_resources" in err  # progress still on stderr, not in the YAML


async def test_ask_stops_at_max_steps(tmp_path, kube, llm, broken_pod, holmes_env):
    holmes_env.setenv("OPENAI_API_BASE", llm.base_url)
    llm.script(*[tool_call("list_resources", {"kind": "pods"})] * 2, text("out of steps: checkout-1 restarts"))
    code, out, err = await run(ask_command, ["ask", "why?", "--model", "test-model", "--max-steps", "3",
                                             "--kubeconfig", kubeconfig(tmp_path, kube)])
    assert code == 1
    assert "inquest: StepLimitReached" in err
    assert len(llm.chat_requests) == 3
    assert "out of steps" in out


async def test_ask_progress_lines_are_redacted(tmp_path, kube, llm, broken_pod, holmes_env):
    """Progress goes to a terminal whose output gets pasted into tickets: same redaction as the model's."""
    holmes_env.setenv("OPENAI_API_BASE", llm.base_url)
    secret = "s3cr3tv4lue-" + "9c1e"
    llm.script(tool_call("list_resources", {"kind": "pods", "label_selector": f"token={secret}"}),
               tool_call("get_resource", {"kind": "pods", "name": f"password={secret}"}), text("done"))
    code, _, err = await run(ask_command, ["ask", "why?", "--model", "test-model",
                                           "--kubeconfig", kubeconfig(tmp_path, kube)])
    assert code == 0, err
    assert "→ list_resources" in err and "→ get_resource" in err and "error:" in err
    assert secret not in err and "[REDACTED:" in err


async def test_ask_reports_a_refused_key(tmp_path, kube, llm_factory, holmes_env):
    llm = await llm_factory(api_key="sk-right")
    holmes_env.setenv("OPENAI_API_BASE", llm.base_url)
    holmes_env.setenv("OPENAI_API_KEY", KEY)
    code, _, err = await run(ask_command, ["ask", "why?", "--model", "test-model",
                                           "--kubeconfig", kubeconfig(tmp_path, kube)])
    assert code == 1
    assert "ModelAuthenticationFailed" in err and KEY not in err


async def test_ask_model_failure_is_reported(tmp_path, kube, llm, holmes_env):
    holmes_env.setenv("OPENAI_API_BASE", llm.base_url)
    llm.script(*[fault(500)] * 10)
    code, _, err = await run(ask_command, ["ask", "why?", "--model", "test-model", "--timeout", "30",
                                           "--kubeconfig", kubeconfig(tmp_path, kube)])
    assert code == 1 and "inquest: " in err


@pytest.mark.parametrize("env, argv, message", [
    ({}, ["--model", "m"], "set OPENAI_API_BASE"),
    ({"OPENAI_API_BASE": "http://127.0.0.1:9/v1"}, [], "pass --model NAME"),
    ({"OPENAI_API_BASE": "ftp://x"}, ["--model", "m"], "baseURL"),
    ({"OPENAI_API_BASE": "http://127.0.0.1:9/v1", "CERTIFICATE": "bm90IGEgY2VydA=="}, ["--model", "m"],
     "InvalidCertificate"),
])
async def test_ask_usage_errors_say_what_to_do(tmp_path, kube, holmes_env, env, argv, message):
    for k, v in env.items():
        holmes_env.setenv(k, v)
    with pytest.raises(UsageError, match=message):
        await run(ask_command, ["ask", "q", *argv, "--kubeconfig", kubeconfig(tmp_path, kube)])


# --------------------------------------------------------------------------- the real command


async def _inquest(*argv: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inquest", *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "operator"), **env})
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_python_dash_m_inquest_check_exit_codes(tmp_path, llm_factory):
    good = await llm_factory()
    bad = await llm_factory(api_key="sk-right")
    env = {"KUBECONFIG": str(tmp_path / "none"), "HOME": str(tmp_path)}
    code, out, _ = await _inquest("check", "-f", provider_file(tmp_path, {"baseURL": good.base_url,
                                                                          "model": "test-model"}), env=env)
    assert code == 0 and "Ready" in out
    path = provider_file(tmp_path, {"baseURL": bad.base_url, "model": "test-model",
                                    "apiKeySecretRef": {"name": "k", "key": "v"}}, secret("k", v=KEY), name="b.yaml")
    code, out, _ = await _inquest("check", "-f", path, env=env)
    assert code == 1 and "InvalidAPIKey" in out and KEY not in out
    code, _, err = await _inquest("ask", "why?", env={**env, "OPENAI_API_BASE": ""})
    assert code == 2 and err.startswith("inquest: ")
