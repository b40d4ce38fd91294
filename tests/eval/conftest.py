from tests.data.conftest import small_data  # noqa: F401  (the shared small dataset)
