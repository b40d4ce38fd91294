"""A small built dataset shared by the data tests (icml_cpu, 2,000 / 200 / 200 programs)."""
import pytest

from kareljax import config_files
from kareljax.data import tfds_karel

SMALL = ["data.num_train=2000", "data.num_val=200", "data.num_test=200"]


def small_config(data_dir, *overrides):
    return config_files.load("icml_cpu", SMALL + [f"data.data_dir={data_dir}", *overrides]).data


def build(data):
    builder = tfds_karel.builder(data)
    builder.download_and_prepare()
    return builder


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    data = small_config(tmp_path_factory.mktemp("datasets"))
    build(data)
    return data
