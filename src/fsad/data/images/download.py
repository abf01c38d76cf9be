"""``download: true`` for the image benchmarks: fetch a public tar archive into the root and unpack it safely.

Same policy as :mod:`fsad.data.download` (whose atomic download, pinning and digest recording are reused): a
no-op when the data is there, atomic files, pinned SHA-256 where known, ``mirror`` replacing the URL by
``<mirror>/<archive name>``. That module extracts zip archives only; the image benchmarks ship tar archives
(``.tar.xz`` for MVTec-AD), read here as a stream, member by member:

- a member name that is absolute, holds ``..`` or a backslash is refused (:class:`DownloadError`) before anything
  is written outside the root;
- only regular files are written (each one atomically; a file already present is kept, so an interrupted
  extraction resumes); links, devices and other special members are skipped and counted;
- ``.fsad-extracted-<archive>`` is written last: its presence means the archive was fully unpacked. A downloaded
  archive is deleted after extraction; an archive the user placed in the root is unpacked without network and
  kept.

Archives and digests (SHA-256 as pinned by anomalib's ``DownloadInfo`` for the same URLs; not re-hashed here):

- MVTec-AD ``mvtec_anomaly_detection.tar.xz`` (about 4.9 GB), the URL anomalib's ``MVTecAD`` datamodule uses;
  unpacks to ``<class>/...`` in the root.
- VisA ``VisA_20220922.tar`` (amazon-science/spot-diff); unpacks to ``<class>/Data/...`` and
  ``split_csv/1cls.csv`` in the root (the ``visa`` layout).
- MPDD has no direct link: :func:`fetch_image_benchmark` raises with where to get it and where to put it.
"""

from __future__ import annotations

import gzip
import logging
import lzma
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from fsad.data.download import (DownloadError, RemoteFile, atomic_destination, check_relative, fetch_and_extract,
                                path_under)

log = logging.getLogger(__name__)

MVTEC_ARCHIVE = RemoteFile(
    "mvtec_anomaly_detection.tar.xz",
    "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f283/download/420938113-1629960298/"
    "mvtec_anomaly_detection.tar.xz",
    "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d",
)
VISA_ARCHIVE = RemoteFile(
    "VisA_20220922.tar",
    "https://amazon-visual-anomaly.s3.us-west-2.amazonaws.com/VisA_20220922.tar",
    "2eb8690c803ab37de0324772964100169ec8ba1fa3f7e94291c9ca673f40f362",
)
IMAGE_ARCHIVES: dict[str, RemoteFile] = {"mvtec": MVTEC_ARCHIVE, "visa": VISA_ARCHIVE}

MANUAL: dict[str, str] = {
    "mpdd": (
        "MPDD cannot be downloaded automatically: it has no direct link. The dataset page "
        "https://github.com/stepanje/MPDD links a OneDrive folder "
        "(https://vutbr-my.sharepoint.com/:f:/g/personal/xjezek16_vutbr_cz/"
        "EhHS_ufVigxDo3MC6Lweau0BVMuoCmhMZj6ddamiQ7-FnA?e=oHKCxI) holding one folder per class: bracket_black, "
        "bracket_brown, bracket_white, connector, metal_plate, tubes. Download them and put them in {root} so that "
        "{root}/<class>/train/good, {root}/<class>/test/<defect> and {root}/<class>/ground_truth/<defect>/"
        "<stem>_mask.png exist (MVTec layout; 888 training and 458 test images in all)."
    ),
}

_CHUNK = 1 << 20
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, gzip.BadGzipFile)


def marker_name(archive: RemoteFile) -> str:
    """Relative path of the file that marks ``archive`` as fully extracted."""
    return f".fsad-extracted-{PurePosixPath(archive.path).name}"


def _member_path(name: str, archive: Path) -> str:
    clean = name[2:] if name.startswith("./") else name
    try:
        check_relative(clean)
    except ValueError as exc:
        raise DownloadError(f"{archive}: member {name!r} would be written outside the dataset root; the archive "
                            f"is refused") from exc
    return clean


def extract_tar(archive: Path, root: Path, marker: str) -> int:
    """Unpack the regular files of tar ``archive`` (any compression) into ``root`` then write ``root/marker``.

    Returns the number of files written. Raises :class:`DownloadError` naming the archive for unsafe member
    names and unreadable or truncated archives.
    """
    written = skipped = present = 0
    try:
        with tarfile.open(archive, mode="r|*") as stream:
            for member in stream:
                rel = _member_path(member.name, archive)
                if member.isdir():
                    continue
                if not member.isfile():
                    skipped += 1
                    continue
                dest = path_under(root, rel)
                if dest.exists():
                    present += 1
                    continue
                source = stream.extractfile(member)
                if source is None:
                    skipped += 1
                    continue
                with atomic_destination(dest) as out:
                    while chunk := source.read(_CHUNK):
                        out.write(chunk)
                written += 1
    except _ARCHIVE_ERRORS as exc:
        raise DownloadError(f"{archive} is not a readable tar archive or is truncated: {exc}") from exc
    with atomic_destination(path_under(root, marker)) as out:
        out.write(f"{archive.name}: {written} files written, {present} already present\n".encode())
    if skipped:
        log.warning("%s: %d links or special members were skipped (only regular files are extracted)",
                    archive.name, skipped)
    log.info("extracted %d files of %s into %s (%d already present)", written, archive.name, root, present)
    return written


def fetch_archive(archive: RemoteFile, root: str | Path, mirror: str | None = None, timeout: float = 60) -> Path:
    """Make the content of tar ``archive`` present under ``root``; return ``root``.

    No-op when its marker exists. An archive file already at ``root/<archive.path>`` is extracted without network
    (and kept); otherwise it is downloaded atomically (checked against ``archive.sha256`` when pinned, else its
    digest is recorded in ``root/SHA256SUMS``), extracted and deleted. Raises :class:`DownloadError`.
    """
    root = Path(root)
    marker = marker_name(archive)
    if path_under(root, marker).exists():
        return root
    fetch_and_extract(archive, root, mirror, timeout, lambda local: extract_tar(local, root, marker))
    return root


def fetch_image_benchmark(name: str, root: str | Path, mirror: str | None = None, timeout: float = 60) -> Path:
    """Download and unpack image benchmark ``name`` (``mvtec`` | ``visa``) into ``root``; see :func:`fetch_archive`.

    Raises :class:`DownloadError` with instructions for MPDD (manual download) and for unknown names.
    """
    key = name.lower()
    if key in MANUAL:
        raise DownloadError(MANUAL[key].format(root=root))
    if key not in IMAGE_ARCHIVES:
        known = ", ".join(sorted([*IMAGE_ARCHIVES, *MANUAL]))
        raise DownloadError(f"no download for image benchmark {name!r}; known: {known}")
    return fetch_archive(IMAGE_ARCHIVES[key], root, mirror=mirror, timeout=timeout)
