"""kareljax.storage on local disk and on gs:// (a local emulator), and orbax checkpoints of
kareljax.train.checkpoints written to and read back from gs://."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kareljax import storage
from kareljax.train.checkpoints import Checkpoints, CorruptCheckpointWarning
from tests.conftest import REPO


@pytest.fixture
def gs_root(gcs_emulator) -> str:
    """A fresh folder in the emulator's bucket."""
    return f"gs://{gcs_emulator.bucket}/{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["local", "gs"])
def root(request, tmp_path) -> str:
    return str(tmp_path) if request.param == "local" else request.getfixturevalue("gs_root")


def blob_names(client, root: str) -> list[str]:
    """The objects under gs:// folder `root`, relative to it, as the Cloud Storage API lists
    them."""
    bucket, _, prefix = root.removeprefix("gs://").partition("/")
    return sorted(b.name.removeprefix(prefix + "/")
                  for b in client.list_blobs(bucket, prefix=prefix + "/"))


def test_paths():
    assert storage.is_remote("gs://b/run") and not storage.is_remote("/tmp/run")
    assert os.fspath(storage.path("gs://b/run/x")) == "gs://b/run/x"
    assert os.fspath(storage.path("run")) == os.path.join(os.getcwd(), "run")


def test_files_round_trip(root):
    run = f"{root}/run"
    storage.makedirs(f"{run}/probe")
    storage.write_text(f"{run}/a.txt", "one\ntwo\n")
    storage.write_bytes(f"{run}/probe/b.bin", b"\x00\x01")
    assert storage.read_text(f"{run}/a.txt") == "one\ntwo\n"
    assert storage.read_bytes(f"{run}/probe/b.bin") == b"\x00\x01"
    with storage.open(f"{run}/a.txt") as f:
        assert f.readlines() == ["one\n", "two\n"]
    assert storage.exists(f"{run}/a.txt") and not storage.exists(f"{run}/c.txt")
    assert storage.is_dir(f"{run}/probe") and not storage.is_dir(f"{run}/a.txt")
    assert storage.listdir(run) == ["a.txt", "probe"]
    assert [p.name for p in storage.glob(run, "*/*.bin")] == ["b.bin"]

    storage.write_text(f"{run}/a.txt", "new")   # replaces
    assert storage.read_text(f"{run}/a.txt") == "new"
    with pytest.raises(ZeroDivisionError), storage.write_whole(f"{run}/a.txt") as f:
        f.write("half")
        1 / 0
    assert storage.read_text(f"{run}/a.txt") == "new"   # unchanged, and no .tmp left behind
    assert storage.listdir(run) == ["a.txt", "probe"]

    storage.move(f"{run}/probe", f"{run}/aside/probe")
    assert storage.listdir(f"{run}/aside/probe") == ["b.bin"] and not storage.exists(f"{run}/probe")
    storage.remove(f"{run}/a.txt")
    storage.remove(f"{run}/a.txt", missing_ok=True)
    storage.rmtree(f"{run}/aside")
    storage.rmtree(f"{run}/aside", missing_ok=True)
    assert not storage.exists(f"{run}/a.txt") and not storage.exists(f"{run}/aside")


def test_mtime_orders_writes(root):
    storage.write_text(f"{root}/first", "1")
    time.sleep(0.05)
    storage.write_text(f"{root}/second", "2")
    first, second = storage.mtime(f"{root}/first"), storage.mtime(f"{root}/second")
    assert first < second and abs(second - time.time()) < 60


def test_gs_files_are_objects_in_the_bucket(gs_root, gcs_client):
    storage.write_text(f"{gs_root}/run/config.json", "{}")
    assert blob_names(gcs_client, gs_root) == ["run/config.json"]


def test_subprocesses_reach_the_emulator(gs_root, gcs_client):
    code = "import sys; from kareljax import storage; storage.write_text(sys.argv[1], 'child')"
    subprocess.run([sys.executable, "-c", code, f"{gs_root}/child.txt"], cwd=REPO, check=True,
                   timeout=60)
    assert blob_names(gcs_client, gs_root) == ["child.txt"]


def _state(step: int) -> dict:
    return {"params": {"w": jnp.arange(6.0).reshape(2, 3) * step}, "step": jnp.array(step)}


def test_checkpoints_on_gs(gs_root, gcs_client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # a gs:// path taken for a local one would land here
    directory = f"{gs_root}/run/checkpoints"
    checkpoints = Checkpoints(directory, checkpoint_every=2, keep_latest_every=1)
    assert checkpoints.directory == directory
    for step in range(1, 5):
        assert checkpoints.save(step, _state(step), {"next_index": step}, {"model": "tiny"})
    checkpoints.wait()
    # Step 1 was deleted (neither a multiple of 2 nor among the newest two).
    assert checkpoints.steps() == [2, 3, 4]
    names = blob_names(gcs_client, gs_root)
    assert {n.split("/")[2] for n in names} == {"2", "3", "4"}
    assert "run/checkpoints/4/state/manifest.ocdbt" in names   # tensorstore's OCDBT arrays
    assert "run/checkpoints/4/data/metadata" in names          # orbax's JSON, through epath
    checkpoints.close()

    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), _state(0))
    reader = Checkpoints(directory, read_only=True)
    restored = reader.restore(abstract)
    assert (restored.step, restored.data, restored.config) == (4, {"next_index": 4},
                                                              {"model": "tiny"})
    np.testing.assert_array_equal(restored.state["params"]["w"], _state(4)["params"]["w"])

    # A damaged newest checkpoint is set aside, to <workdir>/corrupt_checkpoints on gs:// too.
    storage.write_text(f"{directory}/4/data/metadata", '{"next_index": ')
    writer = Checkpoints(directory, checkpoint_every=2, keep_latest_every=1)
    with pytest.warns(CorruptCheckpointWarning, match="checkpoints/4 does not read back"):
        assert writer.restore(abstract).step == 3
    writer.close()
    assert writer.steps() == [2, 3]
    assert "run/corrupt_checkpoints/4/state/manifest.ocdbt" in blob_names(gcs_client, gs_root)
    assert not any(n.startswith("run/checkpoints/4/") for n in blob_names(gcs_client, gs_root))
    assert os.listdir(tmp_path) == []   # nothing on the local disk
