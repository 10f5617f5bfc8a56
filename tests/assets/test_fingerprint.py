"""The fingerprint reads a file once and again only when its stat signature moves."""

import os
from collections import OrderedDict
from pathlib import Path

import pytest

from ssda_assets.raw import fingerprint
from ssda_assets.raw.fingerprint import content_hash, dataset_hash

MB = 1 << 20


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files whose bytes the fingerprint read, in order, against an empty cache."""
    monkeypatch.setattr(fingerprint, "_digests", OrderedDict())
    seen: list[Path] = []
    read = fingerprint._file_digest

    def counting(path: Path) -> str:
        seen.append(path)
        return read(path)

    monkeypatch.setattr(fingerprint, "_file_digest", counting)
    return seen


def _dataset(folder: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return folder


def _rewrite(file: Path, content: bytes) -> None:
    """New bytes and a later mtime, whatever the filesystem's timestamp granularity."""
    before = file.stat().st_mtime_ns
    file.write_bytes(content)
    os.utime(file, ns=(before + 10**9, before + 10**9))


def test_a_large_file_is_read_once(tmp_path: Path, reads: list[Path]) -> None:
    folder = _dataset(tmp_path / "big", {"meta.yaml": b"drugs: [x]\n", "matrix.mtx": b""})
    os.truncate(folder / "matrix.mtx", 64 * MB)  # sparse: cheap on disk, 64 MB to read all the same
    first = dataset_hash(folder)
    assert sum(f.stat().st_size for f in reads) == 64 * MB + len(b"drugs: [x]\n")
    reads.clear()
    assert dataset_hash(folder) == first
    assert reads == []


def test_a_changed_file_changes_the_hash_and_only_it_is_read(tmp_path: Path, reads: list[Path]) -> None:
    folder = _dataset(tmp_path / "d", {"a.txt": b"aaaa", "b.txt": b"bbbb", "sub/c.txt": b"cccc"})
    first = dataset_hash(folder)
    reads.clear()
    _rewrite(folder / "sub" / "c.txt", b"CCCC")  # same size, in place
    assert dataset_hash(folder) != first
    assert reads == [(folder / "sub" / "c.txt").resolve()]


def test_a_replaced_file_is_read_again_even_with_its_old_size_and_mtime(
    tmp_path: Path, reads: list[Path]
) -> None:
    folder = _dataset(tmp_path / "d", {"a.txt": b"aaaa"})
    old = (folder / "a.txt").stat()
    first = dataset_hash(folder)
    _dataset(tmp_path, {"new.txt": b"AAAA"})
    os.utime(tmp_path / "new.txt", ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(tmp_path / "new.txt", folder / "a.txt")  # what an atomic copy does: a new inode
    assert dataset_hash(folder) != first


def test_names_count_and_locations_do_not(tmp_path: Path, reads: list[Path]) -> None:
    files = {"x.mtx": b"1 2 3\n", "genes.tsv": b"TP53\n"}
    one, two = _dataset(tmp_path / "one", files), _dataset(tmp_path / "two", files)
    assert dataset_hash(one) == dataset_hash(two)
    (two / "x.mtx").rename(two / "y.mtx")
    assert dataset_hash(one) != dataset_hash(two)


def test_hash_of_files_uses_names_relative_to_the_root(tmp_path: Path, reads: list[Path]) -> None:
    a = _dataset(tmp_path / "a", {"expr.csv": b"1", "ic50.csv": b"2"})
    b = _dataset(tmp_path / "b", {"expr.csv": b"1", "ic50.csv": b"2"})
    assert content_hash([a / "ic50.csv", a / "expr.csv"], a) == content_hash(
        [b / "expr.csv", b / "ic50.csv"], b
    )


def test_the_cache_is_bounded(tmp_path: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fingerprint, "_CACHE_LIMIT", 2)
    folder = _dataset(tmp_path / "d", {"a": b"1", "b": b"2", "c": b"3"})
    dataset_hash(folder)
    assert len(fingerprint._digests) == 2
