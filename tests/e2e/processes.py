"""What runs beside the control plane in the e2e tests: the operator as a subprocess, the fake LLM in
a thread of its own.

``OperatorProcess`` runs ``python -m inquest`` with the args and env of the operator container of
deploy/kustomize/base/deployment.yaml (what we ship), plus ``--verbose`` (the tests read Kopf's debug
log) and ``--kubeconfig FILE``; the ``--liveness`` URL is moved to 127.0.0.1 and a free port, so the
probe endpoint the kubelet would call answers here too (``OperatorProcess.health()``). Its output goes
to a file that assertion messages quote.
``ThreadedLLM`` runs ``tests.support.fake_llm.FakeLLM`` (aiohttp) on an event loop in a daemon thread
so that synchronous tests and fixtures can use it; the operator reaches it on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.support.fake_llm import FakeLLM

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = REPO_ROOT / "deploy" / "kustomize" / "base" / "deployment.yaml"
OPERATOR_CONTAINER = "operator"
# what the Downward API would give the container (fieldRef), should the Deployment ever use it
_FIELD_REFS = {"metadata.namespace": "inquest-system", "metadata.name": "inquest-operator-e2e",
               "spec.serviceAccountName": "inquest-operator"}


@dataclass(frozen=True)
class ShippedOperator:
    """The operator container of the shipped Deployment: ``inquest ARGV...`` with ``env``."""

    deployment: dict[str, Any]
    container: dict[str, Any]
    argv: tuple[str, ...]  # after the ``inquest`` entrypoint: ("run", "--all-namespaces", ...)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def liveness(self) -> str | None:
        """The ``--liveness`` URL as shipped (``http://0.0.0.0:8080/healthz``), or None."""
        return _option(self.argv, "--liveness")

    def argv_with_liveness(self, url: str) -> tuple[str, ...]:
        """``argv`` with the ``--liveness`` URL replaced by ``url``."""
        out: list[str] = []
        replace_next = False
        for arg in self.argv:
            if replace_next:
                out.append(url)
                replace_next = False
            elif arg == "--liveness":
                out.append(arg)
                replace_next = True
            elif arg.startswith("--liveness="):
                out.append(f"--liveness={url}")
            else:
                out.append(arg)
        return tuple(out)


def _option(argv: tuple[str, ...], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def shipped_operator(path: Path = DEPLOYMENT) -> ShippedOperator:
    """The operator container's command, args and env from the Deployment manifest.

    Fails (rather than guessing) on what a local process cannot reproduce: a command that is not the
    ``inquest`` entrypoint, or env taken from Secrets/ConfigMaps.
    """
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    assert len(deployments) == 1, f"{path} must hold one Deployment, found {len(deployments)}"
    (deployment,) = deployments
    containers = deployment["spec"]["template"]["spec"]["containers"]
    matching = [c for c in containers if c.get("name") == OPERATOR_CONTAINER] or containers[:1]
    container = matching[0]
    command = list(container.get("command") or ["inquest"])  # the image's ENTRYPOINT is ["inquest"]
    assert Path(command[0]).name == "inquest", f"{path}: the container runs {command}, not inquest"
    argv = (*command[1:], *[str(a) for a in container.get("args") or []])
    assert argv and argv[0] == "run", f"{path}: the container does not run `inquest run`: {argv}"
    env: dict[str, str] = {}
    for entry in container.get("env") or []:
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        elif "fieldRef" in (entry.get("valueFrom") or {}):
            field_path = entry["valueFrom"]["fieldRef"]["fieldPath"]
            assert field_path in _FIELD_REFS, f"{path}: teach tests/e2e/processes.py the fieldRef {field_path}"
            env[entry["name"]] = _FIELD_REFS[field_path]
        elif "valueFrom" in entry:
            raise AssertionError(f"{path}: env {entry['name']} comes from {entry['valueFrom']}: teach "
                                 f"tests/e2e/processes.py how to provide it")
        else:
            env[entry["name"]] = ""
    assert not container.get("envFrom"), f"{path}: envFrom is not reproduced by tests/e2e/processes.py"
    return ShippedOperator(deployment, container, argv, env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def local_liveness_url(shipped_url: str, port: int) -> str:
    """The shipped ``--liveness`` URL on 127.0.0.1:``port`` (same scheme and path)."""
    parts = urllib.parse.urlsplit(shipped_url)
    return urllib.parse.urlunsplit((parts.scheme, f"127.0.0.1:{port}", parts.path, parts.query, ""))


class OperatorProcess:
    """``inquest run`` in a subprocess; start, stop (SIGINT, then SIGTERM, then SIGKILL), kill, restart.

    By default it runs the shipped Deployment's args and env (see the module's docstring); ``env``
    is added on top of the Deployment's (test settings win), ``args`` replaces the Deployment's
    ``run ...`` arguments altogether. Each start serves the liveness endpoint on a fresh free port
    (``liveness_url``).

    All runs append to one log file, each after a ``=== start N ===`` line, so that a failing
    assertion can show what every run of the operator said.
    """

    def __init__(
        self,
        kubeconfig: str | os.PathLike[str],
        log_path: str | os.PathLike[str],
        *,
        args: tuple[str, ...] | None = None,
        env: dict[str, str] | None = None,
        verbose: bool = True,
        deployment: Path = DEPLOYMENT,
    ) -> None:
        self.kubeconfig = str(kubeconfig)
        self.log_path = Path(log_path)
        self.shipped = shipped_operator(deployment)
        self.args = args
        self.verbose = verbose
        self.env = {**self.shipped.env, **(env or {})}
        self.liveness_url: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._offsets: list[int] = []

    # ---- lifecycle ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        if self.args is not None:
            argv: tuple[str, ...] = ("run", *self.args)
        elif self.liveness_url is not None:
            argv = self.shipped.argv_with_liveness(self.liveness_url)
        else:
            argv = self.shipped.argv
        verbose = ("--verbose",) if self.verbose and "--verbose" not in argv and "-v" not in argv else ()
        return [sys.executable, "-m", "inquest", *argv, *verbose, "--kubeconfig", self.kubeconfig]

    def start(self, *, ready_timeout: float = 30.0) -> OperatorProcess:
        if self.running:
            raise RuntimeError("the operator is running already")
        self.starts += 1
        if self.args is None and self.shipped.liveness:
            self.liveness_url = local_liveness_url(self.shipped.liveness, free_port())
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._offsets.append(log.tell())
            log.write(f"=== start {self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            env = {
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "KUBECONFIG": self.kubeconfig,
                **self.env,
            }
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=env,
                start_new_session=True,  # a Ctrl-C of pytest does not reach it; we stop it ourselves
            )
        self.wait_for_output(self._started_marker, timeout=ready_timeout, what="the operator to start watching")
        return self

    @staticmethod
    def _started_marker(text: str) -> bool:
        # Kopf's debug line (kopf/_cogs/clients/watching.py) once it watches both of our resources
        return all(f"Starting the watch-stream for {plural}.v1alpha1.inquest.dev" in text
                   for plural in ("modelproviders", "investigations"))

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT (Kopf's graceful stop), then SIGTERM, then SIGKILL. Returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None:
                break
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        self._note(f"=== stopped: exit code {proc.returncode}")
        return proc.returncode

    def kill(self) -> int | None:
        """SIGKILL: a crash or an OOM kill, no clean-up handlers run."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        self._note(f"=== killed: exit code {proc.returncode}")
        return proc.returncode

    def restart(self) -> OperatorProcess:
        self.stop()
        return self.start()

    def health(self, timeout: float = 5.0) -> int | None:
        """GET the liveness URL (what the kubelet's probes call): the HTTP status, None if nobody answers."""
        assert self.liveness_url is not None, "this operator serves no liveness endpoint"
        try:
            with urllib.request.urlopen(self.liveness_url, timeout=timeout) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return int(err.code)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def _note(self, line: str) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"{line}\n".encode())

    # ---- output -----------------------------------------------------------------------

    def output(self, run: int | None = None) -> str:
        """All output so far, or that of one run (1-based)."""
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        if run is not None:
            start = self._offsets[run - 1]
            end = self._offsets[run] if run < len(self._offsets) else len(data)
            data = data[start:end]
        return data.decode("utf-8", "replace")

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def diagnostics(self) -> str:
        state = "running" if self.running else f"exited with {self.proc.returncode if self.proc else None}"
        return f"\n--- operator ({state}), last lines of {self.log_path}:\n{self.tail()}\n---"

    def wait_for_output(self, predicate: Callable[[str], bool] | str, *, timeout: float = 30.0,
                        what: str = "", run: int | None = None) -> str:
        check = predicate if callable(predicate) else (lambda text: predicate in text)
        deadline = time.monotonic() + timeout
        while True:
            text = self.output(run if run is not None else self.starts)
            if check(text):
                return text
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the operator exited ({self.proc.returncode}) while waiting for "
                                     f"{what or predicate}{self.diagnostics()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}"
                                     f"{self.diagnostics()}")
            time.sleep(0.1)

    # An API call refused (urllib3's debug line '"GET /path HTTP/1.1" 403 305', or aiohttp's errors as
    # Kopf logs them), a crash, or an unhandled error in a handler.
    _PROBLEM = re.compile(r'HTTP/1\.1" 40[13] |\bforbidden\b|\bUnauthorized\b|Traceback \(most recent call last\)'
                          r"|\[ERROR", re.IGNORECASE)

    def problems(self) -> list[str]:
        """Lines that show the operator lacked a permission, crashed, or logged an error."""
        return [line for line in self.output().splitlines() if self._PROBLEM.search(line)]


class ThreadedLLM:
    """A FakeLLM on its own event loop in a daemon thread, for synchronous tests.

    ``llm`` is the FakeLLM: ``script(...)``, ``requests``, ``chat_requests``, ``base_url`` work from
    the test thread (they only append to / read from lists and deques).
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-llm", daemon=True)
        self.llm: FakeLLM | None = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> FakeLLM:
        self._thread.start()
        self.llm = self.run(FakeLLM(**self._kwargs).start())
        return self.llm

    def stop(self) -> None:
        if self.llm is not None:
            self.run(self.llm.stop())
            self.llm = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()
