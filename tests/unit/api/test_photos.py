"""Storing proof photos: only images, synced to disk before they get their name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api.errors import UnsupportedMediaError
from api.events.service import image_format, store_photo

JPEG = b"\xff\xd8\xff\xdb\x00\x43" + b"\x01" * 64


def test_formats_are_told_by_their_first_bytes() -> None:
    """JPEG, PNG, WebP and HEIF/HEIC are recognised; other files and truncated headers are not."""
    assert image_format(JPEG) == "jpeg"
    assert image_format(b"\x89PNG\r\n\x1a\n\x00\x00") == "png"
    assert image_format(b"RIFF\x00\x00\x00\x00WEBPVP8L") == "webp"
    assert image_format(b"\x00\x00\x00\x1cftypheic\x00\x00") == "heic"
    assert image_format(b"\x00\x00\x00\x1cftypmif1\x00\x00") == "heic"
    for data in (b"", b"\xff\xd8", b"\x89PNG", b"RIFF\x00\x00\x00\x00WAVE", b"GIF89a", b"%PDF"):
        assert image_format(data) is None, data


def test_a_photo_is_synced_then_renamed_then_its_folder_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes are fsynced under a temporary name, renamed into place, then the folder fsynced."""
    steps: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        steps.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    folder = tmp_path / "uploads"
    photo_id = store_photo(folder, JPEG)
    final = folder / f"{photo_id}.bin"
    assert final.read_bytes() == JPEG
    assert [kind for kind, _ in steps] == ["fsync", "replace", "fsync"]
    tmp_name = steps[0][1]
    assert Path(tmp_name).parent == folder.resolve()
    assert tmp_name != str(final.resolve())
    assert steps[1][1] == tmp_name
    assert steps[2][1] == str(folder.resolve())
    assert sorted(p.name for p in folder.iterdir()) == [final.name]


def test_a_stored_photo_is_not_written_again(tmp_path: Path) -> None:
    """The same bytes twice give the same id and leave one file (retries are idempotent)."""
    first = store_photo(tmp_path, JPEG)
    mtime = (tmp_path / f"{first}.bin").stat().st_mtime_ns
    assert store_photo(tmp_path, JPEG) == first
    assert (tmp_path / f"{first}.bin").stat().st_mtime_ns == mtime
    assert len(list(tmp_path.iterdir())) == 1


def test_what_is_not_an_image_is_refused_and_nothing_written(tmp_path: Path) -> None:
    """A non-image raises the 415 error naming ``file`` and writes nothing."""
    with pytest.raises(UnsupportedMediaError) as info:
        store_photo(tmp_path / "uploads", b"%PDF-1.7 not a photo")
    assert info.value.errors[0]["column"] == "file"
    assert not (tmp_path / "uploads").exists() or not list((tmp_path / "uploads").iterdir())
