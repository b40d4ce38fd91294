"""Building and reading the dataset works where `import tensorflow` fails."""
import pathlib
import subprocess
import sys
import textwrap

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_build_and_read_without_tensorflow(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        class HideTensorFlow:
            # Wraps every import finder so that tensorflow looks uninstalled, even where it is.
            def __init__(self, finder):
                self.finder = finder
            def find_spec(self, name, path=None, target=None):
                if name == "tensorflow" or name.startswith("tensorflow."):
                    return None
                find = getattr(self.finder, "find_spec", None)
                return find(name, path, target) if find else None
            def __getattr__(self, name):
                return getattr(self.finder, name)
        sys.meta_path[:] = [HideTensorFlow(f) for f in sys.meta_path]
        try:
            import tensorflow
            raise SystemExit("tensorflow imported")
        except ImportError:
            pass
        import tensorflow_datasets as tfds
        from kareljax import config_files
        from kareljax.data import pipeline, tfds_karel
        data = config_files.load("icml_cpu", ["data.num_train=200", "data.num_val=100",
                                              "data.num_test=100",
                                              "data.data_dir={tmp_path}"]).data
        tfds_karel.builder(data).download_and_prepare()
        source = tfds.data_source("karel/" + tfds_karel.builder(data).builder_config.name,
                                  data_dir="{tmp_path}", split="val")
        assert len(source) == 100 and source[3]["inputs"].shape == (10, 4, 4)
        batch = next(iter(pipeline.batches(data, batch_size=8)))
        assert batch["tokens"].shape == (8, 188)
        assert "tensorflow" not in sys.modules
        print("OK")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")
