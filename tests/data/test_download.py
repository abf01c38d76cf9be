"""fsad.data.download against a real local HTTP server (offline): atomicity, pinning, recording, archives, registry."""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fsad.data import download
from fsad.data.download import BENCHMARKS, REQUEST_ONLY, DownloadError, RemoteFile, fetch, fetch_files
from tests.conftest import shared_path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (posix relative path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class Server:
    """Serves ``self.dir`` on 127.0.0.1; records request paths; ``cut`` maps a path to a body sent short."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.requests: list[str] = []
        self.cut: dict[str, bytes] = {}
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self):
                server.requests.append(self.path)
                if self.path in server.cut:
                    body = server.cut[self.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body) + 1000))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        self.running = True

    def put(self, rel: str, data: bytes) -> str:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"{self.url}/{rel}"

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)
            self.running = False


@pytest.fixture
def server(tmp_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    srv = Server(tmp_path / "served")
    srv.dir.mkdir()
    yield srv
    srv.stop()


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "bench"


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            if name.endswith("/"):
                zf.writestr(zipfile.ZipInfo(name), b"")
            else:
                zf.writestr(name, data)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ plain files


def test_pinned_download_then_second_call_is_offline_and_keeps_files(server, root):
    a, b = b"alpha\n", bytes(range(256)) * 50
    files = [RemoteFile("a.txt", server.put("x/a.txt", a), sha(a)),
             RemoteFile("sub/dir/b.bin", server.put("y/b.bin", b), sha(b))]
    paths = fetch_files(files, root)
    assert paths == [root / "a.txt", root / "sub" / "dir" / "b.bin"]
    assert tree(root) == {"a.txt": a, "sub/dir/b.bin": b}
    assert server.requests == ["/x/a.txt", "/y/b.bin"]
    (root / "plain").write_bytes(b"")  # downloaded files get the umask's usual mode, not a temp file's 0600
    assert (root / "a.txt").stat().st_mode & 0o777 == (root / "plain").stat().st_mode & 0o777
    (root / "plain").unlink()

    server.stop()
    (root / "a.txt").write_bytes(b"edited by hand")  # existing files are neither re-verified nor overwritten
    assert fetch_files(files, root) == paths
    assert tree(root) == {"a.txt": b"edited by hand", "sub/dir/b.bin": b}
    assert server.requests == ["/x/a.txt", "/y/b.bin"]


def test_wrong_digest_raises_and_leaves_nothing(server, root):
    data = b"not what was pinned"
    url = server.put("f.csv", data)
    pinned = "0" * 64
    with pytest.raises(DownloadError) as err:
        fetch_files([RemoteFile("deep/f.csv", url, pinned)], root)
    message = str(err.value)
    assert url in message
    assert str(root / "deep" / "f.csv") in message
    assert f"expected sha256 {pinned}" in message
    assert f"got {sha(data)}" in message
    assert tree(root) == {}


def test_truncated_transfer_raises_and_leaves_nothing(server, root):
    server.cut["/cut.bin"] = b"0123456789"
    with pytest.raises(DownloadError, match=r"was cut short: 10 of 1010 bytes") as err:
        fetch_files([RemoteFile("cut.bin", f"{server.url}/cut.bin", None)], root)
    assert f"place it at {root / 'cut.bin'}" in str(err.value)
    assert tree(root) == {}


def test_http_error_names_url_and_destination(server, root):
    url = f"{server.url}/missing.csv"
    with pytest.raises(DownloadError) as err:
        fetch_files([RemoteFile("missing.csv", url, None)], root)
    message = str(err.value)
    assert f"could not download {url} to {root / 'missing.csv'}: HTTP Error 404" in message
    assert f"place it at {root / 'missing.csv'}" in message
    assert tree(root) == {}


def test_interrupt_removes_partial_file(server, root, monkeypatch):
    seen: list[str] = []

    class Interrupting:
        def update(self, chunk):
            seen.extend(p.name for p in root.iterdir())
            raise KeyboardInterrupt

    monkeypatch.setattr(download, "hashlib", SimpleNamespace(sha256=Interrupting))
    with pytest.raises(KeyboardInterrupt):
        fetch_files([RemoteFile("k.csv", server.put("k.csv", b"1,2,3\n"), None)], root)
    assert len(seen) == 1 and seen[0].startswith("k.csv.part-")  # the temp file existed mid-transfer...
    assert tree(root) == {}  # ...and was removed


def test_unpinned_files_are_recorded_in_sha256sums(server, root, caplog):
    one, two = b"first\n", b"second\n"
    files = [RemoteFile("data/u1.csv", server.put("u1.csv", one), None),
             RemoteFile("u2.csv", server.put("u2.csv", two), None)]
    with caplog.at_level(logging.INFO, logger="fsad.data.download"):
        fetch_files(files, root)
    assert (root / "SHA256SUMS").read_text() == f"{sha(one)}  data/u1.csv\n{sha(two)}  u2.csv\n"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and sha(one) in warnings[0] and sha(two) in warnings[1]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(f"({len(one)} bytes," in m and m.endswith("u1.csv") for m in infos)

    # re-download after deletion: the path's line is replaced, not duplicated
    (root / "data" / "u1.csv").unlink()
    new = b"first, changed upstream\n"
    server.put("u1.csv", new)
    fetch_files(files, root)
    assert (root / "SHA256SUMS").read_text() == f"{sha(two)}  u2.csv\n{sha(new)}  data/u1.csv\n"


def test_mirror_replaces_url_by_mirror_plus_path(server, root):
    data = b"mirrored"
    server.put("m/sub/file.txt", data)
    paths = fetch_files([RemoteFile("sub/file.txt", "https://invalid.example/nope", sha(data))], root,
                        mirror=server.url + "/m/")
    assert paths == [root / "sub" / "file.txt"]
    assert server.requests == ["/m/sub/file.txt"]
    assert tree(root) == {"sub/file.txt": data}


# ----------------------------------------------------------------------------------------------------- archives


def telemanom_archive() -> RemoteFile:
    (entry,) = [f for f in BENCHMARKS["smap"] if f.extract]
    return entry


def test_telemanom_zip_is_extracted_to_train_test_layout_then_no_op(server, root):
    npy = {name: name.encode() * 3 for name in ("A-1", "B-2")}
    archive = make_zip({
        "data/": b"",
        "data/train/": b"",
        "data/test/A-1.npy": npy["A-1"] + b"test",
        "data/train/A-1.npy": npy["A-1"],
        "data/train/B-2.npy": npy["B-2"],
        "data/test/B-2.npy": npy["B-2"] + b"test",
        "__MACOSX/data/train/._A-1.npy": b"resource fork",
        "data/README.txt": b"not selected",
    })
    server.put("data.zip", archive)
    entry = telemanom_archive()
    assert fetch_files([entry], root, mirror=server.url) == [root / "test" / "A-1.npy"]
    assert tree(root) == {
        "SHA256SUMS": f"{sha(archive)}  data.zip\n".encode(),
        "test/A-1.npy": npy["A-1"] + b"test",
        "test/B-2.npy": npy["B-2"] + b"test",
        "train/A-1.npy": npy["A-1"],
        "train/B-2.npy": npy["B-2"],
    }
    assert server.requests == ["/data.zip"]
    server.stop()
    assert fetch_files([entry], root, mirror=server.url) == [root / "test" / "A-1.npy"]
    assert server.requests == ["/data.zip"]


def test_archive_placed_by_hand_is_extracted_without_network_and_kept(root):
    archive = make_zip({"data/train/A-1.npy": b"tr", "data/test/A-1.npy": b"te"})
    root.mkdir()
    (root / "data.zip").write_bytes(archive)
    entry = RemoteFile("data.zip", "http://127.0.0.1:9/unreachable.zip", None, extract="zip",
                       members=telemanom_archive().members, target=telemanom_archive().target, marker="test/A-1.npy")
    fetch_files([entry], root)
    assert tree(root) == {"data.zip": archive, "train/A-1.npy": b"tr", "test/A-1.npy": b"te"}


def test_archive_without_marker_raises_and_extracts_nothing(server, root):
    server.put("data.zip", make_zip({"data/train/Z-9.npy": b"z"}))
    with pytest.raises(DownloadError, match=r"has no member for test/A-1\.npy"):
        fetch_files([telemanom_archive()], root, mirror=server.url)
    assert tree(root) == {"SHA256SUMS": f"{sha((server.dir / 'data.zip').read_bytes())}  data.zip\n".encode()}


def test_marker_is_extracted_last(server, root):
    # the marker member comes first in the zip, a later member is corrupt: the marker must not appear
    archive = make_zip({"data/test/A-1.npy": b"marker", "data/train/A-1.npy": b"CORRUPTME"})
    server.put("data.zip", archive.replace(b"CORRUPTME", b"CORRUPTMX"))
    with pytest.raises(DownloadError, match=r"is not a readable zip archive: Bad CRC-32"):
        fetch_files([telemanom_archive()], root, mirror=server.url)
    assert sorted(tree(root)) == ["SHA256SUMS"]


def test_corrupt_archive_raises(server, root):
    server.put("data.zip", b"<html>not a zip</html>")
    with pytest.raises(DownloadError, match=r"is not a readable zip archive"):
        fetch_files([telemanom_archive()], root, mirror=server.url)
    assert not (root / "data.zip").exists()


def test_ucr_archive_members_are_extracted_flat(server, root):
    folder = "AnomalyDatasets_2021/UCR_TimeSeriesAnomalyDatasets2021/FilesAreInHere/UCR_Anomaly_FullData/"
    first = "001_UCR_Anomaly_DISTORTED1sddb40_35000_52000_52620.txt"
    second = "135_UCR_Anomaly_InternalBleeding16_1200_4187_4199.txt"
    server.put("UCR_TimeSeriesAnomalyDatasets2021.zip", make_zip({
        folder + first: b"1.0\n2.0\n",
        folder + second: b"3.0\n",
        "__MACOSX/" + folder + "._" + first: b"fork",
        "AnomalyDatasets_2021/UCR_TimeSeriesAnomalyDatasets2021/Readme.pdf": b"%PDF",
    }))
    assert fetch("UCR", root, mirror=server.url) == [root / first]
    files = tree(root)
    assert sorted(files) == sorted([first, second, "SHA256SUMS"])
    assert files[first] == b"1.0\n2.0\n" and files[second] == b"3.0\n"


# ----------------------------------------------------------------------------------------------------- registry


def test_registry_pins_are_applied_via_mirror(server, root):
    first = BENCHMARKS["nab"][0]
    assert first.path == "data/README.md"
    server.put("data/README.md", b"fake NAB readme")
    with pytest.raises(DownloadError) as err:
        fetch("NAB", root, mirror=server.url)
    message = str(err.value)
    assert f"{server.url}/data/README.md" in message
    assert f"expected sha256 {first.sha256}" in message
    assert f"got {sha(b'fake NAB readme')}" in message
    assert server.requests == ["/data/README.md"]
    assert tree(root) == {}


def test_registry_shapes():
    assert len(BENCHMARKS["nab"]) == 60 and all(f.sha256 for f in BENCHMARKS["nab"])
    assert sum(f.path.startswith("data/") and f.path.endswith(".csv") for f in BENCHMARKS["nab"]) == 58
    smd = BENCHMARKS["smd"]
    assert len(smd) == 4 * 28
    assert {f.path for f in smd if f.sha256} == {f"ServerMachineDataset/{k}/machine-{g}-{i}.txt"
                                                 for k in ("test_label", "interpretation_label")
                                                 for g, n in ((1, 8), (2, 9), (3, 11)) for i in range(1, n + 1)}
    assert all(f.url.endswith("/" + f.path) for name in ("smd", "nab", "psm") for f in BENCHMARKS[name])
    assert [f.path for f in BENCHMARKS["psm"]] == ["train.csv", "test.csv", "test_label.csv"]


def test_pinned_digests_match_the_shared_reference_copies():
    nab = shared_path("data", "NAB")
    for entry in BENCHMARKS["nab"]:
        assert sha((nab / entry.path).read_bytes()) == entry.sha256, entry.path
    smd = shared_path("data", "SMD")
    pinned = [f for f in BENCHMARKS["smd"] if f.sha256]
    assert len(pinned) == 56
    for entry in pinned:
        assert sha((smd / entry.path).read_bytes()) == entry.sha256, entry.path
    labels = shared_path("data", "MSL", "labeled_anomalies.csv")
    for name in ("msl", "smap"):
        (entry,) = [f for f in BENCHMARKS[name] if f.path == "labeled_anomalies.csv"]
        assert sha(labels.read_bytes()) == entry.sha256


def test_request_only_benchmarks_explain_where_to_get_the_files(tmp_path):
    with pytest.raises(DownloadError) as err:
        fetch("SWaT", tmp_path)
    message = str(err.value)
    assert "itrust.sutd.edu.sg" in message.lower() and str(tmp_path) in message
    for name in ("swat_train2.csv", "swat2.csv", "SWaT_train.csv", "SWaT_test.csv", "SWaT_test_label.csv",
                 "SWaT_Dataset_Normal_v1.csv", "SWaT_Dataset_Attack_v0.csv"):
        assert name in message
    with pytest.raises(DownloadError, match=r"genesis-demonstrator-data-for-machine-learning") as err:
        fetch("genesis", tmp_path)
    assert f"Genesis_AnomalyLabels.csv in {tmp_path}" in str(err.value)
    with pytest.raises(DownloadError, match=r"decisionintelligence/TAB") as err:
        fetch("tab", tmp_path)
    assert "DETECT_META.csv" in str(err.value) and f"{tmp_path}/multi_ts/<NAME>.csv" in str(err.value)
    with pytest.raises(DownloadError, match=r"https://www\.unb\.ca/cic/datasets/ids-2017\.html"):
        fetch("cicids2017", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unknown_name_lists_known_names(tmp_path):
    with pytest.raises(DownloadError) as err:
        fetch("kdd99", tmp_path)
    known = sorted([*BENCHMARKS, *REQUEST_ONLY])
    assert str(err.value) == "unknown benchmark 'kdd99'; known: " + ", ".join(known)
    assert set(known) == {"cicids2017", "gecco", "genesis", "msl", "nab", "psm", "smap", "smd", "swat", "tab", "ucr"}


def test_remote_file_rejects_bad_entries():
    with pytest.raises(ValueError, match="relative posix path"):
        RemoteFile("../escape.txt", "http://x", None)
    with pytest.raises(ValueError, match="64 lower-case hex"):
        RemoteFile("a.txt", "http://x", "ABC")
    with pytest.raises(ValueError, match="needs members, target and marker"):
        RemoteFile("a.zip", "http://x", None, extract="zip")


# ------------------------------------------------------------------------------------------- through the DataModule


def test_datamodule_downloads_then_loads_the_benchmark(server, root):
    """``data=ucr data.download=true`` with a mirror: prepare_data fetches the archive, setup reads the series."""
    from hydra.utils import instantiate

    from tests.pipeline.helpers import compose_cfg

    folder = "AnomalyDatasets_2021/UCR_TimeSeriesAnomalyDatasets2021/FilesAreInHere/UCR_Anomaly_FullData/"
    marker = "001_UCR_Anomaly_DISTORTED1sddb40_35000_52000_52620.txt"
    series = "135_UCR_Anomaly_Toy_300_350_359.txt"
    values = np.sin(np.arange(500) / 5.0)
    server.put("UCR_TimeSeriesAnomalyDatasets2021.zip", make_zip({
        folder + marker: b"1.0\n", folder + series: "\n".join(f"{v:.6f}" for v in values).encode()}))
    cfg = compose_cfg("train", ["data=ucr", f"data.root={root}", "data.download=true", f"data.mirror={server.url}",
                                "data.series=135", "data.window=50"], root.parent / "run")
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.splits["test"].values.shape == (200, 1)
    assert np.flatnonzero(datamodule.splits["test"].labels).tolist() == list(range(49, 59))  # 1-based 350..359
    requests = len(server.requests)
    datamodule.prepare_data()  # already there: no network
    assert len(server.requests) == requests


def test_datamodule_for_request_only_data_explains_where_to_ask(tmp_path):
    from fsad.data.benchmarks import SWaTDataModule

    datamodule = SWaTDataModule(root=str(tmp_path / "SWaT"), n_channels=51, window=10, download=True)
    with pytest.raises(DownloadError, match="(?i)itrust"):
        datamodule.prepare_data()
