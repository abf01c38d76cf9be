"""``download: true`` for the time-series benchmarks: fetch the public files into a benchmark root.

Policy:

- **No-op when the data is there.** A file whose destination exists is left alone: no network, no re-hashing, no
  overwrite. For an archive the test is its ``marker`` (one of the files it extracts, written last).
- **Atomic.** Each file is streamed into ``<name>.part-<random>`` next to its destination, hashed while it is
  written, and moved into place with :func:`os.replace` only once complete and verified. Any failure, including
  Ctrl-C, removes the temporary file, so a final name never holds a partial file. Archive members are written the
  same way.
- **Pinned vs recorded digests.** Where a byte-identical reference copy was available, the registry pins its SHA-256
  and a mismatch raises :class:`DownloadError`. Unpinned files (no reference to pin against, or upstream files that
  are derived/mutable) are downloaded anyway; their digest is logged as a warning and appended to
  ``<root>/SHA256SUMS`` so the user keeps a record of exactly what was used.
- **Manual data.** Benchmarks that cannot be fetched without an account or a request form are in
  :data:`REQUEST_ONLY`; :func:`fetch` raises with where to get them and which files to put where.

``mirror`` replaces every URL by ``<mirror>/<path>`` (institutional mirrors, offline tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import secrets
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.resources import files as package_files
from pathlib import Path, PurePosixPath
from typing import BinaryIO

log = logging.getLogger("fsad.data.download")

_CHUNK = 1 << 20
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)
SUMS_FILE = "SHA256SUMS"


class DownloadError(RuntimeError):
    """A benchmark file could not be fetched, failed verification, or must be obtained by hand."""


@dataclass(frozen=True)
class RemoteFile:
    """One file (or archive) of a benchmark.

    Attributes:
        path: posix path relative to the benchmark root where the file ends up (for an archive: where it is
            downloaded to before extraction; an archive already there is extracted without network).
        url: where to download it from.
        sha256: pinned lower-case hex digest, or ``None`` when no byte-exact reference was available.
        extract: ``"zip"`` for an archive whose selected members are extracted into the root, else ``None``.
        members: regex searched in each member name; a member is extracted when it matches.
        target: destination of a matching member, relative to the root, in :meth:`re.Match.expand` syntax
            (e.g. ``r"\\g<split>/\\g<name>"``).
        marker: destination (relative to the root) of one member; extracted last, so its existence means the
            archive was fully extracted (or the data was placed by hand).
    """

    path: str
    url: str
    sha256: str | None
    extract: str | None = None
    members: str | None = None
    target: str | None = None
    marker: str | None = None

    def __post_init__(self) -> None:
        check_relative(self.path)
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"{self.path}: sha256 must be 64 lower-case hex digits, got {self.sha256!r}")
        if self.extract not in (None, "zip"):
            raise ValueError(f"{self.path}: unsupported archive type {self.extract!r} (only 'zip')")
        if self.extract and not (self.members and self.target and self.marker):
            raise ValueError(f"{self.path}: an archive needs members, target and marker")
        if self.marker is not None:
            check_relative(self.marker)

    @property
    def done(self) -> str:
        """Relative path whose existence means this entry needs nothing more (``marker`` or ``path``)."""
        return self.marker if self.extract else self.path


def fetch_files(
    files: Iterable[RemoteFile], root: str | Path, mirror: str | None = None, timeout: float = 60
) -> list[Path]:
    """Make every file of ``files`` present under ``root``; return their paths (the marker for an archive).

    Existing destinations are skipped without any network access. Downloads are atomic and verified against the
    pinned SHA-256; unpinned digests are recorded in ``<root>/SHA256SUMS``. Raises :class:`DownloadError` on
    network errors, truncated transfers, checksum mismatches and unreadable archives.
    """
    root = Path(root)
    done: list[Path] = []
    for file in files:
        dest = path_under(root, file.done)
        if not dest.exists():
            if file.extract:
                fetch_and_extract(file, root, mirror, timeout, lambda archive: _extract(file, archive, root))
            else:
                download_file(file, root, mirror, timeout)
        done.append(dest)
    return done


def fetch(name: str, root: str | Path, mirror: str | None = None, timeout: float = 60) -> list[Path]:
    """Download benchmark ``name`` (case-insensitive key of :data:`BENCHMARKS`) into ``root``; see :func:`fetch_files`.

    Raises :class:`DownloadError` with instructions for the :data:`REQUEST_ONLY` benchmarks and for unknown names.
    """
    key = name.lower()
    if key in REQUEST_ONLY:
        raise DownloadError(f"{name} cannot be downloaded automatically. " + REQUEST_ONLY[key].format(root=root))
    if key not in BENCHMARKS:
        known = ", ".join(sorted([*BENCHMARKS, *REQUEST_ONLY]))
        raise DownloadError(f"unknown benchmark {name!r}; known: {known}")
    return fetch_files(BENCHMARKS[key], root, mirror=mirror, timeout=timeout)


# --------------------------------------------------------------------------------------------------- machinery


def check_relative(path: str) -> None:
    """ValueError unless ``path`` is a relative posix path that stays inside its root (no ``..``, no ``\\``)."""
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or "\\" in path or ".." in parts:
        raise ValueError(f"not a relative posix path inside the root: {path!r}")


def path_under(root: Path, rel: str) -> Path:
    """``root`` joined with the posix path ``rel`` (checked with :func:`check_relative` by the callers)."""
    return root.joinpath(*PurePosixPath(rel).parts)


def _url(file: RemoteFile, mirror: str | None) -> str:
    return file.url if mirror is None else f"{mirror.rstrip('/')}/{file.path}"


@contextlib.contextmanager
def atomic_destination(dest: Path) -> Iterator[BinaryIO]:
    """Yield a temp file next to ``dest``; move it onto ``dest`` if the block succeeds, delete it otherwise."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.part-{secrets.token_hex(6)}")
    try:
        with open(tmp, "xb") as out:  # not mkstemp: its 0600 mode would stick to the final file
            yield out
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def download_file(file: RemoteFile, root: Path, mirror: str | None, timeout: float) -> None:
    """Stream ``file`` into ``root`` atomically, hashing while writing; :class:`DownloadError` on a network error or
    a pinned digest that does not match (an unpinned digest is logged and recorded in ``SHA256SUMS``)."""
    dest, url = path_under(root, file.path), _url(file, mirror)
    start, size, hasher = time.monotonic(), 0, hashlib.sha256()
    with atomic_destination(dest) as out:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "fsad-download"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                expected_size = response.headers.get("Content-Length")
                while chunk := response.read(_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except _NETWORK_ERRORS as exc:
            raise DownloadError(_manual_hint(f"could not download {url} to {dest}: {exc}", dest)) from exc
        if expected_size is not None and expected_size.isdigit() and size != int(expected_size):
            raise DownloadError(_manual_hint(f"transfer of {url} to {dest} was cut short: "
                                             f"{size} of {expected_size} bytes", dest))
        digest = hasher.hexdigest()
        if file.sha256 is not None and digest != file.sha256:
            raise DownloadError(f"checksum mismatch for {url} -> {dest}: expected sha256 {file.sha256}, "
                                f"got {digest} (the upstream file changed or the transfer was corrupted)")
    log.info("downloaded %s (%d bytes, %.1f s) from %s", dest, size, time.monotonic() - start, url)
    if file.sha256 is None:
        _record(root, file.path, digest)
        log.warning("%s has no pinned SHA-256; its digest %s was recorded in %s", file.path, digest,
                    root / SUMS_FILE)


def _manual_hint(message: str, dest: Path) -> str:
    return f"{message}. You can download it by other means and place it at {dest}; it is then used as is."


def _record(root: Path, rel: str, digest: str) -> None:
    """Set the line of ``rel`` in ``<root>/SHA256SUMS`` (sha256sum format), rewriting the file atomically."""
    sums = root / SUMS_FILE
    lines = sums.read_text().splitlines() if sums.exists() else []
    lines = [line for line in lines if line.partition("  ")[2] != rel] + [f"{digest}  {rel}"]
    with atomic_destination(sums) as out:
        out.write(("\n".join(lines) + "\n").encode())


def fetch_and_extract(file: RemoteFile, root: Path, mirror: str | None, timeout: float,
                      extract: Callable[[Path], None]) -> None:
    """Download the archive ``file`` into ``root`` unless it is already there, run ``extract(archive_path)``, then
    delete an archive this call downloaded. An archive whose extraction raises :class:`DownloadError` (bad content)
    is deleted when this call downloaded it, so the next call fetches it again; an interrupted one is kept."""
    archive = path_under(root, file.path)
    downloaded = not archive.exists()
    if downloaded:
        download_file(file, root, mirror, timeout)
    try:
        extract(archive)
    except DownloadError:
        if downloaded:
            archive.unlink(missing_ok=True)
        raise
    if downloaded:
        archive.unlink()


def _extract(file: RemoteFile, archive: Path, root: Path) -> None:
    """Extract the members selected by ``file.members`` to ``file.target``; existing destinations are kept."""
    pattern = re.compile(str(file.members))
    try:
        with zipfile.ZipFile(archive) as zf:
            chosen: dict[str, zipfile.ZipInfo] = {}
            for info in zf.infolist():
                match = None if info.is_dir() else pattern.search(info.filename)
                if match:
                    rel = match.expand(str(file.target))
                    check_relative(rel)
                    chosen.setdefault(rel, info)
            if file.marker not in chosen:
                raise DownloadError(f"{archive} (from {file.url}) has no member for {file.marker}: "
                                    f"its layout is not the expected one")
            order = [rel for rel in chosen if rel != file.marker] + [str(file.marker)]
            written = 0
            for rel in order:
                dest = path_under(root, rel)
                if dest.exists():
                    continue
                with atomic_destination(dest) as out, zf.open(chosen[rel]) as member:
                    while chunk := member.read(_CHUNK):
                        out.write(chunk)
                written += 1
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive} (from {file.url}) is not a readable zip archive: {exc}") from exc
    log.info("extracted %d of %d selected members of %s into %s", written, len(chosen), archive.name, root)


# ----------------------------------------------------------------------------------------------------- registry


def _checksums(name: str) -> dict[str, str]:
    """``{relative path: sha256}`` from the package data file ``checksums/<name>.sha256`` (sha256sum format)."""
    text = (package_files("fsad.data") / "checksums" / f"{name}.sha256").read_text()
    pairs = (line.split("  ", 1) for line in text.splitlines() if line.strip())
    return {rel: digest for digest, rel in pairs}


_OMNI = "https://raw.githubusercontent.com/NetManAIOps/OmniAnomaly/7fb0e0acf89ea49908896bcc9f9e80fcfff6baf4"
_NAB = "https://raw.githubusercontent.com/numenta/NAB/ea702d75cc2258d9d7dd35ca8e5e2539d71f3140"
_TELEMANOM_LABELS_SHA256 = "057ce2d6c8875982bf4e5404aefea14efdcbce413d80826d2b737c95b59b7539"


def _smd_files() -> list[RemoteFile]:
    """OmniAnomaly's raw SMD layout, 28 machines; labels pinned, train/test unpinned (no byte-exact reference)."""
    pinned = _checksums("smd")
    machines = [f"machine-{g}-{i}" for g, n in ((1, 8), (2, 9), (3, 11)) for i in range(1, n + 1)]
    out = []
    for kind in ("train", "test", "test_label", "interpretation_label"):
        for machine in machines:
            rel = f"ServerMachineDataset/{kind}/{machine}.txt"
            sha = pinned[rel] if kind in ("test_label", "interpretation_label") else None
            out.append(RemoteFile(rel, f"{_OMNI}/{rel}", sha))
    return out


def _nab_files() -> list[RemoteFile]:
    """NAB's ``data/`` tree and ``labels/combined_windows.json`` at a fixed commit, all pinned."""
    return [RemoteFile(rel, f"{_NAB}/{rel}", sha) for rel, sha in _checksums("nab").items()]


def _telemanom_files(marker_channel: str) -> list[RemoteFile]:
    """telemanom release: labels (pinned) + ``data.zip`` (unpinned) -> ``train/<chan>.npy``, ``test/<chan>.npy``."""
    labels = RemoteFile("labeled_anomalies.csv",
                        "https://raw.githubusercontent.com/khundman/telemanom/master/labeled_anomalies.csv",
                        _TELEMANOM_LABELS_SHA256)
    archive = RemoteFile("data.zip", "https://s3-us-west-2.amazonaws.com/telemanom/data.zip", None, extract="zip",
                         members=r"(?:^|/)(?P<split>train|test)/(?P<name>[^/.][^/]*\.npy)$",
                         target=r"\g<split>/\g<name>", marker=f"test/{marker_channel}.npy")
    return [labels, archive]


def _ucr_files() -> list[RemoteFile]:
    """The UCR anomaly archive 2021 (unpinned); every ``<id>_UCR_Anomaly_*.txt`` is extracted flat into the root."""
    return [RemoteFile("UCR_TimeSeriesAnomalyDatasets2021.zip",
                       "https://www.cs.ucr.edu/~eamonn/time_series_data_2018/UCR_TimeSeriesAnomalyDatasets2021.zip",
                       None, extract="zip", members=r"(?:^|/)(?P<name>\d+_UCR_Anomaly_[^/]*\.txt)$",
                       target=r"\g<name>", marker="001_UCR_Anomaly_DISTORTED1sddb40_35000_52000_52620.txt")]


def _psm_files() -> list[RemoteFile]:
    """PSM from eBay/RANSynCoders (branch ``main``, unpinned)."""
    base = "https://raw.githubusercontent.com/eBay/RANSynCoders/main/data"
    return [RemoteFile(f"{part}.csv", f"{base}/{part}.csv", None) for part in ("train", "test", "test_label")]


def _gecco_files() -> list[RemoteFile]:
    """GECCO Industrial Challenge 2018 water-quality data, Zenodo record 3884398 (unpinned)."""
    rel = "1_gecco2018_water_quality.csv"
    return [RemoteFile(rel, f"https://zenodo.org/records/3884398/files/{rel}?download=1", None)]


BENCHMARKS: dict[str, list[RemoteFile]] = {
    "smd": _smd_files(),
    "msl": _telemanom_files("C-1"),
    "smap": _telemanom_files("A-1"),
    "nab": _nab_files(),
    "ucr": _ucr_files(),
    "psm": _psm_files(),
    "gecco": _gecco_files(),
}

REQUEST_ONLY: dict[str, str] = {
    "swat": (
        "SWaT is shared on request by iTrust, Singapore University of Technology and Design: fill in the request "
        "form at https://itrust.sutd.edu.sg/itrust-labs_datasets/ . Then put one of these file sets in {root}: "
        "swat_train2.csv + swat2.csv (DCdetector layout), or SWaT_train.csv + SWaT_test.csv + SWaT_test_label.csv "
        "(TransMamba layout), or SWaT_Dataset_Normal_v1.csv + SWaT_Dataset_Attack_v0.csv (iTrust export)."
    ),
    "genesis": (
        "The Genesis demonstrator data is on Kaggle (dataset 'genesis-demonstrator-data-for-machine-learning' by "
        "inIT-OWL, https://www.kaggle.com/datasets/inIT-OWL/genesis-demonstrator-data-for-machine-learning ; needs "
        "a Kaggle account). Put Genesis_AnomalyLabels.csv in {root}."
    ),
    "tab": (
        "TAB's datasets are linked (Google Drive) from the README of https://github.com/decisionintelligence/TAB . "
        "Put DETECT_META.csv in {root} and each series as {root}/multi_ts/<NAME>.csv."
    ),
    "cicids2017": (
        "CICIDS2017 is distributed by the Canadian Institute for Cybersecurity behind a form at "
        "https://www.unb.ca/cic/datasets/ids-2017.html . Put the CICFlowMeter CSVs (with 'Timestamp' and 'Label' "
        "columns, e.g. the GeneratedLabelledFlows / TrafficLabelling files) in {root}: the loader reads every *.csv "
        "there."
    ),
}
