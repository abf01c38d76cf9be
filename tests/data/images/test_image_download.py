"""Tar archives of the image benchmarks, offline through file:// mirrors: extraction, safety, pins, MPDD."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from fsad.data.download import DownloadError, RemoteFile
from fsad.data.images import ImageDataModule
from fsad.data.images.download import (IMAGE_ARCHIVES, MVTEC_ARCHIVE, VISA_ARCHIVE, fetch_archive,
                                       fetch_image_benchmark, marker_name)
from tests.data.images.helpers import write_mvtec


def make_tar(path: Path, members: dict[str, bytes], mode: str = "w:xz", links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def mirror_of(folder: Path) -> str:
    return folder.as_uri()


def test_registry_urls_and_pins():
    assert MVTEC_ARCHIVE.url.endswith("/mvtec_anomaly_detection.tar.xz") and MVTEC_ARCHIVE.url.startswith("https://")
    assert VISA_ARCHIVE.url == "https://amazon-visual-anomaly.s3.us-west-2.amazonaws.com/VisA_20220922.tar"
    assert MVTEC_ARCHIVE.sha256 == "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d"
    assert VISA_ARCHIVE.sha256 == "2eb8690c803ab37de0324772964100169ec8ba1fa3f7e94291c9ca673f40f362"
    assert set(IMAGE_ARCHIVES) == {"mvtec", "visa"}


def test_archive_is_downloaded_extracted_deleted_and_then_left_alone(tmp_path):
    served = tmp_path / "served"
    members = {"bottle/train/good/000.png": b"a", "./bottle/test/good/000.png": b"b", "readme.txt": b"r"}
    data = make_tar(served / "bench.tar.xz", members, links={"bottle/link.png": "/etc/passwd"})
    entry = RemoteFile("bench.tar.xz", "https://unreachable.invalid/bench.tar.xz", None)
    root = tmp_path / "root"
    assert fetch_archive(entry, root, mirror=mirror_of(served)) == root
    files = tree(root)
    digest = hashlib.sha256(data).hexdigest()
    assert files.pop("SHA256SUMS") == f"{digest}  bench.tar.xz\n".encode()  # unpinned: recorded
    assert files.pop(marker_name(entry)).startswith(b"bench.tar.xz: 3 files written")
    assert files == {"bottle/train/good/000.png": b"a", "bottle/test/good/000.png": b"b", "readme.txt": b"r"}
    assert not (root / "bottle" / "link.png").exists()  # links are never created
    (served / "bench.tar.xz").unlink()
    fetch_archive(entry, root, mirror=mirror_of(served))  # marker present: no network, nothing changes


def test_unsafe_member_names_are_refused(tmp_path):
    for name in ("../evil.txt", "/abs/evil.txt", "a/../../evil.txt"):
        served = tmp_path / "s"
        make_tar(served / "x.tar", {"ok.txt": b"1", name: b"2"}, mode="w")
        entry = RemoteFile("x.tar", "https://unreachable.invalid/x.tar", None)
        with pytest.raises(DownloadError, match="would be written outside the dataset root"):
            fetch_archive(entry, tmp_path / "r", mirror=mirror_of(served))
        assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "r" / "x.tar").exists()
        assert not (tmp_path / "r" / marker_name(entry)).exists()


def test_truncated_archive_is_an_error_and_not_kept(tmp_path):
    served = tmp_path / "s"
    data = make_tar(served / "t.tar.xz", {"a/b.png": bytes(range(256)) * 400})
    (served / "t.tar.xz").write_bytes(data[: len(data) // 2])
    entry = RemoteFile("t.tar.xz", "https://unreachable.invalid/t.tar.xz", None)
    with pytest.raises(DownloadError, match=r"t.tar.xz is not a readable tar archive or is truncated"):
        fetch_archive(entry, tmp_path / "r", mirror=mirror_of(served))
    assert not (tmp_path / "r" / "t.tar.xz").exists() and not (tmp_path / "r" / "a" / "b.png").exists()


def test_archive_placed_by_hand_is_extracted_offline_and_kept(tmp_path):
    root = tmp_path / "r"
    make_tar(root / "VisA_20220922.tar", {"split_csv/1cls.csv": b"object,split,label,image,mask\n"}, mode="w")
    fetch_image_benchmark("VisA", root, mirror="https://unreachable.invalid")
    assert (root / "split_csv" / "1cls.csv").is_file() and (root / "VisA_20220922.tar").is_file()


def test_pins_are_applied_through_a_mirror(tmp_path):
    served = tmp_path / "s"
    make_tar(served / "mvtec_anomaly_detection.tar.xz", {"bottle/x.png": b"not the real archive"})
    with pytest.raises(DownloadError, match="checksum mismatch .* expected sha256 cf4313b1"):
        fetch_image_benchmark("mvtec", tmp_path / "r", mirror=mirror_of(served))
    assert not (tmp_path / "r" / "mvtec_anomaly_detection.tar.xz").exists()


def test_mpdd_and_unknown_names_explain_what_to_do(tmp_path):
    with pytest.raises(DownloadError, match=r"MPDD cannot be downloaded automatically.*github.com/stepanje/MPDD.*"
                                            r"bracket_black.*" + str(tmp_path / "mpdd") + r"/<class>/train/good"):
        fetch_image_benchmark("MPDD", tmp_path / "mpdd")
    with pytest.raises(DownloadError, match="known: mpdd, mvtec, visa"):
        fetch_image_benchmark("btad", tmp_path)


def test_datamodule_downloads_only_when_the_classes_are_absent(tmp_path):
    root = write_mvtec(tmp_path / "mvtec", classes=("bottle",), n_bad=1)
    dm = ImageDataModule(str(root), "mvtec", download=True, mirror="https://unreachable.invalid")
    dm.prepare_data()  # present: no network
    dm = ImageDataModule(str(tmp_path / "mpdd"), "mpdd", download=True)
    with pytest.raises(DownloadError, match="MPDD cannot be downloaded automatically"):
        dm.prepare_data()
