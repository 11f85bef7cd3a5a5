"""feature_extractor.celeba_index: reading and checking the CelebA index files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from extractor_helpers import ATTRS, N_IMAGES, make_celeba

from feature_extractor.celeba_index import CelebaError, read_celeba


def test_read_celeba_fixture(celeba_tiny: Path) -> None:
    idx = read_celeba(celeba_tiny)
    assert idx.attributes == ATTRS
    assert len(idx) == N_IMAGES
    assert idx.labels.shape == (N_IMAGES, 4) and set(np.unique(idx.labels)) <= {0, 1}
    assert int(idx.labels[:, 1].sum()) == N_IMAGES // 2
    assert [len(idx.indices(p)) for p in ("train", "val", "test")] == [24, 8, 8]
    assert idx.lines[0] == 3 and idx.identities is not None and idx.identities[5] == 1
    assert idx.checksum["images"] == N_IMAGES and len(idx.checksum["sha256"]) == 64


def test_checksum_changes_with_labels(celeba_tiny: Path) -> None:
    before = read_celeba(celeba_tiny).checksum["sha256"]
    attr = celeba_tiny / "list_attr_celeba.txt"
    attr.write_text(attr.read_text().replace("000001.jpg  1", "000001.jpg -1"))
    assert read_celeba(celeba_tiny).checksum["sha256"] != before


def test_missing_image_names_file_and_line(celeba_tiny: Path) -> None:
    (celeba_tiny / "img_align_celeba" / "000005.jpg").unlink()
    with pytest.raises(CelebaError, match=r"list_attr_celeba\.txt line 7: image .*000005\.jpg "
                                          r"does not exist"):
        read_celeba(celeba_tiny)
    notes: list[str] = []
    idx = read_celeba(celeba_tiny, skip_bad=True, report=notes.append)
    assert len(idx) == N_IMAGES - 1 and "000005.jpg" not in idx.filenames
    assert len(notes) == 1 and "line 7" in notes[0]


@pytest.mark.parametrize("bad_row, reason", [
    ("000003.jpg 1 -1 1", "expected an image name and 4 values, found 4 fields"),
    ("000003.jpg 1 -1 0 1", "values must be 1 or -1, found '0'"),
])
def test_malformed_line_names_file_and_line(celeba_tiny: Path, bad_row: str,
                                            reason: str) -> None:
    attr = celeba_tiny / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    lines[4] = bad_row  # line 5 of the file = third image row
    attr.write_text("\n".join(lines) + "\n")
    with pytest.raises(CelebaError) as err:
        read_celeba(celeba_tiny)
    assert "list_attr_celeba.txt line 5" in str(err.value) and reason in str(err.value)
    notes: list[str] = []
    idx = read_celeba(celeba_tiny, skip_bad=True, report=notes.append)
    assert "000003.jpg" not in idx.filenames and any("line 5" in m for m in notes)


def test_malformed_partition_line(celeba_tiny: Path) -> None:
    part = celeba_tiny / "list_eval_partition.txt"
    lines = part.read_text().splitlines()
    lines[9] = "000010.jpg 7"
    part.write_text("\n".join(lines) + "\n")
    with pytest.raises(CelebaError, match=r"list_eval_partition\.txt line 10: bad partition"):
        read_celeba(celeba_tiny)


def test_bad_header_and_missing_dir(tmp_path: Path, celeba_tiny: Path) -> None:
    with pytest.raises(CelebaError, match="does not exist"):
        read_celeba(tmp_path / "nope")
    attr = celeba_tiny / "list_attr_celeba.txt"
    attr.write_text("forty\n" + attr.read_text().split("\n", 1)[1])
    with pytest.raises(CelebaError, match=r"line 1: expected the image count"):
        read_celeba(celeba_tiny)


def test_no_partition_file(tmp_path: Path) -> None:
    root = make_celeba(tmp_path / "np", partition=False)
    idx = read_celeba(root)
    assert idx.partitions is None and len(idx.indices("all")) == N_IMAGES
    with pytest.raises(CelebaError, match="no partition"):
        idx.indices("test")
