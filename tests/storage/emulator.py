"""gcp-storage-emulator as the tests run it (`python tests/storage/emulator.py start ...`): its
downloads also carry the object's generation in `x-goog-generation`, as Cloud Storage's do.
tensorstore (orbax's checkpoint arrays) reads a generation from that header before it rewrites
an OCDBT manifest; without it the rewrite fails ("Malformed StorageGeneration")."""
from gcp_storage_emulator.handlers import objects

_download = objects.download


def download_with_generation(request, response, storage, *args, **kwargs):
    try:
        obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
        response["x-goog-generation"] = str(obj["generation"])
        response["x-goog-metageneration"] = str(obj["metageneration"])
    except Exception:       # noqa: BLE001  (a missing object: the download answers 404 itself)
        pass
    return _download(request, response, storage, *args, **kwargs)


objects.download = download_with_generation     # before the server module reads the handlers

if __name__ == "__main__":
    from gcp_storage_emulator.__main__ import main
    main()
