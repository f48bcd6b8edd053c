import subprocess
import sys
from pathlib import Path

from inquest import __version__
from inquest.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_version(capsys):
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"inquest {__version__}"


def test_run_without_kubeconfig_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("inquest: no Kubernetes configuration found") and "\n" not in err


def test_python_dash_m_and_help():
    out = subprocess.run([sys.executable, "-m", "inquest", "run", "--help"], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "operator"), "PATH": ""}).stdout
    assert "--all-namespaces" in out and "--namespace" in out and "--verbose" in out


def test_operator_source_root_does_not_shadow_the_standard_library():
    assert not (ROOT / "operator" / "__init__.py").exists()
    out = subprocess.run([sys.executable, "-c", "import collections, operator; print(operator.__file__)"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert not out.startswith(str(ROOT)), out
