"""A damaged ``.csv.gz`` (cut short, or corrupt) is one line naming the file, exit 3,
whichever reading step meets the damage: the first read, or the second read that names
a bad cell or counts lines for a message (which once raised ``EOFError``, exit 4).
"""

from __future__ import annotations

import gzip

import pytest

from calaudit.errors import InvalidInputError
from calaudit.loaders.csv_reader import CsvLineIndex
from calaudit.loaders.table import load_prediction_file
from clitools import error_line, invoke

ROWS = 40000  # over 256 KiB of text: pandas meets the bad cell before the end of the stream
DAMAGED = "truncated or corrupt gzip stream"


def _text(change=None) -> bytes:
    rows = ["dog,0.25,0.75"] * ROWS
    if change is not None:
        column, value = change
        rows[10] = {"label": f"{value},0.25,0.75", "prob_cat": f"dog,{value},0.75"}[column]  # row 11, before the cut
    return ("label,prob_cat,prob_dog\n" + "\n".join(rows) + "\n").encode()


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _crc_mismatch(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[-8] ^= 0xFF
    return bytes(damaged)


def _broken_deflate(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[100:116] = bytes((i * 37) % 256 for i in range(16))  # zlib: "invalid distance too far back"
    return bytes(damaged)


@pytest.mark.parametrize("change", [None, ("prob_cat", "abc"), ("prob_cat", ""), ("label", "eel")])
@pytest.mark.parametrize("damage", [_cut, _crc_mismatch, _broken_deflate])
def test_a_damaged_gzip_csv_is_one_line_in_memory(tmp_path, change, damage):
    path = tmp_path / "preds.csv.gz"
    path.write_bytes(damage(gzip.compress(_text(change), mtime=0)))
    with pytest.raises(InvalidInputError) as caught:
        load_prediction_file(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    if change is None:  # nothing else is wrong: the damage is the error
        assert DAMAGED in message, message
    else:  # the damage, or the bad cell before it: either is the file's real problem
        assert DAMAGED in message or "row 11" in message, message


@pytest.mark.parametrize("engine", ["memory", "stream"])
def test_a_truncated_gzip_csv_is_exit_3_with_both_engines(tmp_path, engine):
    path = tmp_path / "preds.csv.gz"
    path.write_bytes(_cut(gzip.compress(_text(("prob_cat", "abc")), mtime=0)))
    line = error_line(invoke("run", path, "--engine", engine, "-q"), 3)
    assert str(path) in line
    if engine == "memory":
        assert DAMAGED in line and "cut short" in line
    clean_cut = tmp_path / "cut.csv.gz"
    clean_cut.write_bytes(_cut(gzip.compress(_text(), mtime=0)))
    assert DAMAGED in error_line(invoke("run", clean_cut, "--engine", engine, "-q"), 3)


def test_the_line_index_of_a_damaged_stream_names_it(tmp_path):
    path = tmp_path / "preds.csv.gz"
    path.write_bytes(_cut(gzip.compress(_text(), mtime=0)))
    with pytest.raises(InvalidInputError, match=DAMAGED):
        CsvLineIndex(path, compressed=True).line_of(ROWS - 1)


def test_a_plain_text_file_named_csv_gz_says_it_is_not_gzip(tmp_path):
    path = tmp_path / "preds.csv.gz"
    path.write_bytes(b"label,prob_a,prob_b\na,0.5,0.5\n")
    line = error_line(invoke("run", path, "-q"), 3)
    assert str(path) in line and "not gzip-compressed" in line and "rename" in line
