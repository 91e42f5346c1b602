import gzip
import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest

from deepnets import DeepnetsError
from deepnets.data import store
from deepnets.data.mnist import read_idx
from deepnets.data.store import RemoteFile, fetch


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("DEEPNETS_OFFLINE", raising=False)
    store.set_offline(None)
    yield tmp_path / "data"
    store.set_offline(None)


def _remote(payload: bytes, url: str = "http://127.0.0.1:9/none") -> RemoteFile:
    return RemoteFile("thing.bin", hashlib.sha256(payload).hexdigest(), (url,))


def test_present_file_with_right_checksum_is_used(root):
    (root / "set").mkdir(parents=True)
    (root / "set" / "thing.bin").write_bytes(b"hello")
    paths = fetch("set", [_remote(b"hello")])
    assert paths["thing.bin"].read_bytes() == b"hello"


def test_corrupt_file_is_an_error_naming_it_and_its_checksum(root):
    (root / "set").mkdir(parents=True)
    (root / "set" / "thing.bin").write_bytes(b"hellO")
    remote = _remote(b"hello")
    with pytest.raises(DeepnetsError) as err:
        fetch("set", [remote])
    assert "thing.bin is corrupt" in str(err.value) and remote.sha256 in str(err.value)


def test_offline_missing_file_says_what_to_put_where(root):
    store.set_offline(True)
    with pytest.raises(DeepnetsError) as err:
        fetch("set", [_remote(b"hello")])
    text = str(err.value)
    assert "missing thing.bin" in text and str(root / "set") in text and "offline" in text


def test_no_network_is_an_error_naming_the_files(root):
    with pytest.raises(DeepnetsError) as err:
        fetch("set", [_remote(b"hello", "http://127.0.0.1:9/thing.bin")])
    text = str(err.value)
    assert "could not download thing.bin" in text and str(root / "set") in text


def _serve(folder):
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_download_checks_sha256_and_tries_the_next_mirror(root, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "good.bin").write_bytes(b"payload")
    (served / "bad.bin").write_bytes(b"tampered")
    server = _serve(served)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        remote = RemoteFile(
            "thing.bin",
            hashlib.sha256(b"payload").hexdigest(),
            (base + "bad.bin", base + "good.bin"),
        )
        paths = fetch("set", [remote])
        assert paths["thing.bin"].read_bytes() == b"payload"
        only_bad = RemoteFile("other.bin", remote.sha256, (base + "bad.bin",))
        with pytest.raises(DeepnetsError, match="checksum mismatch"):
            fetch("set", [only_bad])
        assert not (root / "set" / "other.bin").exists()
    finally:
        server.shutdown()


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def test_read_idx_parses_gzip_and_plain(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(_idx_bytes(array))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(_idx_bytes(array)))
    assert np.array_equal(read_idx(tmp_path / "a.idx"), array)
    assert np.array_equal(read_idx(tmp_path / "a.idx.gz"), array)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x01\x02\x08\x01", "bad magic"),
        (b"\x00\x00\x0d\x01", "not unsigned bytes"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated inside its header"),
        (_idx_bytes(np.zeros((4, 5)))[:-3], "truncated or corrupt"),
    ],
)
def test_read_idx_rejects_bad_files_naming_them(tmp_path, content, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(DeepnetsError, match=message) as err:
        read_idx(path)
    assert "bad.idx" in str(err.value)


def test_read_idx_rejects_a_broken_gzip(tmp_path):
    path = tmp_path / "bad.idx.gz"
    path.write_bytes(gzip.compress(_idx_bytes(np.zeros((4, 5))))[:-10])
    with pytest.raises(DeepnetsError, match="cannot be read"):
        read_idx(path)
