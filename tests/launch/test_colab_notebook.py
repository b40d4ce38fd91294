"""launch/kareljax_colab.ipynb: current with its generator, and executed end to end in a Jupyter
kernel at micro size (kareljax already installed, no clone, no Google Cloud section), with a time
bound on every cell."""
import json
import os
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

from tests.launch.dry_run import LAUNCH, REPO, requirements_pin
from tests.micro import micro_overrides

NOTEBOOK = LAUNCH / "kareljax_colab.ipynb"
CELL_TIMEOUT_S = 300


def parameters_index(nb) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "the notebook needs one code cell tagged 'parameters'"
    return tagged[0]


def test_notebook_is_what_its_generator_writes():
    result = subprocess.run([sys.executable, str(LAUNCH / "make_colab_notebook.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_notebook_installs_the_pinned_jax():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    source = nb.cells[parameters_index(nb)].source
    assert f'JAX_VERSION = "{requirements_pin("jax")}"' in source


def test_notebook_runs_end_to_end_and_shows_the_report(tmp_path, monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    overrides = " ".join(micro_overrides(tmp_path / "data"))
    run_dir = tmp_path / "run"
    # As papermill does: a cell after the parameters that sets this run's values.
    nb.cells.insert(parameters_index(nb) + 1, nbformat.v4.new_code_cell("\n".join([
        "INSTALL = False", f"RUN = {str(run_dir)!r}", f"OVERRIDES = {overrides!r}"])))
    # `!kareljax` and `!python` in the notebook are this environment's.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}})
    client.execute()

    assert (run_dir / "report" / "report.md").exists()
    steps = {json.loads(line)["step"] for line in open(run_dir / "results.jsonl")}
    assert steps == {0, 10}
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    markdown = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert any("Table 1" in m for m in markdown), "the report's markdown is not shown"
    pngs = sorted(p.name for p in (run_dir / "report").glob("*.png"))
    assert pngs and len(images) == len(pngs), (pngs, len(images))
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "INSTALL = False" in text and "backend: cpu" in text
    assert "BUCKET is empty" in text
    assert not [o for o in outputs if o.get("output_type") == "error"]
