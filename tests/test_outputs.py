"""Outputs never destroy anything: special files are written through, symlinks keep
pointing where they pointed, inputs of the run are never replaced, a full disk is one
line and exit 3 (issue 10, part 1)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from calaudit.files.atomic import output_destination, write_atomic
from calaudit.errors import OutputWriteError, UsageError
from clitools import error_line, invoke
from onnx_graphs import prob_model, save, weights, write_arrays

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "digits_gaussian_nb.csv"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def predictions(tmp_path) -> Path:
    path = tmp_path / "preds.csv"
    path.write_text("label,prob_a,prob_b\na,0.9,0.1\nb,0.2,0.8\na,0.6,0.4\nb,0.3,0.7\n")
    return path


@pytest.fixture()
def model_and_data(tmp_path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    w, b = weights(4, 3)
    model = save(prob_model(w, b), tmp_path / "model.onnx")
    data = write_arrays(tmp_path / "data", rng.normal(size=(60, 4)).astype(np.float32), rng.integers(0, 3, 60))
    return model, data


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ special files and links


def test_dev_null_stays_a_device(predictions):
    before = os.stat("/dev/null")
    result = invoke("run", predictions, "--bootstrap", "0", "--json", "/dev/null", "-q")
    assert result.exit_code == 0, result.output
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_fifo_is_written_through(tmp_path, predictions):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = invoke("run", predictions, "--bootstrap", "0", "--json", fifo, "-q")
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert json.loads(received[0])["format"] == "calaudit.audit"


def test_symlink_target_is_written_and_the_link_kept(tmp_path, predictions):
    target = tmp_path / "results" / "audit.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    result = invoke("run", predictions, "--bootstrap", "0", "--json", link, "-q")
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["format"] == "calaudit.audit"
    assert sorted(p.name for p in target.parent.iterdir()) == ["audit.json"]  # no temporary left


def test_dangling_symlink_creates_its_target(tmp_path, predictions):
    target = tmp_path / "new.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert invoke("run", predictions, "--bootstrap", "0", "--json", link, "-q").exit_code == 0
    assert link.is_symlink() and json.loads(target.read_text())["n_samples"] == 4


def test_symlink_loop_is_a_usage_error(tmp_path, predictions):
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    line = error_line(invoke("run", predictions, "--bootstrap", "0", "--json", loop), 2)
    assert "symlink loop" in line and str(loop) in line


def test_a_directory_is_refused(tmp_path, predictions):
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        write_atomic(folder, "x")


def test_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    path.chmod(0o640)
    write_atomic(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "new"


def test_output_destination_classifies():
    assert output_destination("/dev/null") == (Path("/dev/null"), "stream")
    assert output_destination("/dev/stdout")[1] == "stream"


# ------------------------------------------------------------------ full disk


def test_full_disk_is_exit_3_in_one_line(predictions):
    line = error_line(invoke("run", predictions, "--bootstrap", "0", "--json", "/dev/full", "-q"), 3)
    assert "/dev/full" in line and "No space left on device" in line


def test_full_disk_raises_output_write_error():
    with pytest.raises(OutputWriteError):
        write_atomic("/dev/full", "x" * 100_000)


def test_stdout_on_a_full_disk_is_exit_3(predictions):
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "calaudit"), "run", str(predictions), "--bootstrap", "0",
             "--json", "-"], stdout=full, stderr=subprocess.PIPE, text=True, cwd=REPO,
        )
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == ["calaudit: error: standard output: cannot write the output "
                                        "(No space left on device)"]


# ------------------------------------------------------------------ inputs are never outputs


@pytest.mark.parametrize("option", ["--json", "--report", "--markdown", "--junit"])
def test_output_over_the_prediction_file_is_refused(predictions, option):
    before = digest(predictions)
    line = error_line(invoke("run", predictions, "--bootstrap", "0", option, predictions), 2)
    assert "would overwrite the prediction file" in line and option in line
    assert digest(predictions) == before


def test_output_through_a_symlink_or_hard_link_to_the_input_is_refused(tmp_path, predictions):
    before = digest(predictions)
    soft = tmp_path / "soft.json"
    soft.symlink_to(predictions)
    hard = tmp_path / "hard.json"
    os.link(predictions, hard)
    for path in (soft, hard):
        error_line(invoke("run", predictions, "--bootstrap", "0", "--json", path), 2)
    assert digest(predictions) == before


def test_out_dir_over_the_input_is_refused(tmp_path):
    folder = tmp_path / "audit"
    folder.mkdir()
    json_input = folder / "audit.json"
    json_input.write_text("{}")
    before = digest(json_input)
    line = error_line(invoke("check", json_input, "--out-dir", folder), 2)
    assert "--out-dir" in line and "would overwrite the result being checked" in line
    assert digest(json_input) == before


def test_save_predictions_onto_the_data_is_refused(model_and_data):
    model, data = model_and_data
    before = snapshot(data)
    line = error_line(invoke("run", model, data, "--bootstrap", "0", "--save-predictions", data / "labels.csv"), 2)
    assert "is inside the data directory" in line
    assert snapshot(data) == before


def test_outputs_inside_the_data_directory_are_refused(model_and_data):
    model, data = model_and_data
    before = snapshot(data)
    error_line(invoke("run", model, data, "--bootstrap", "0", "--out-dir", data / "audit"), 2)
    error_line(invoke("run", model, data, "--bootstrap", "0", "--json", data / "features.npy"), 2)
    assert snapshot(data) == before


def test_output_over_the_model_is_refused(model_and_data):
    model, data = model_and_data
    before = digest(model)
    error_line(invoke("run", model, data, "--bootstrap", "0", "--report", model), 2)
    assert digest(model) == before


def test_library_refuses_saving_predictions_over_the_model(model_and_data):
    from calaudit.loaders.model_run import load_model_predictions

    model, data = model_and_data
    with pytest.raises(UsageError, match="would overwrite the model"):
        load_model_predictions(model, data, save_predictions=model.with_suffix(".onnx"))


def test_settings_file_and_baseline_result_are_inputs(tmp_path, predictions, monkeypatch):
    settings = tmp_path / "calaudit.toml"
    settings.write_text("bins = 10\n")
    monkeypatch.chdir(tmp_path)
    before = digest(settings)
    line = error_line(invoke("run", predictions, "--bootstrap", "0", "--json", settings), 2)
    assert "the settings file" in line and digest(settings) == before
    baseline = tmp_path / "previous.json"
    assert invoke("run", predictions, "--bootstrap", "0", "--json", baseline, "-q").exit_code == 0
    before = digest(baseline)
    line = error_line(invoke("run", predictions, "--bootstrap", "0", "--baseline-result", baseline,
                             "--max-increase", "ece=0.1", "--report", baseline), 2)
    assert "the baseline result" in line and digest(baseline) == before


def test_two_outputs_on_one_path_are_refused(tmp_path, predictions):
    target = tmp_path / "same.out"
    line = error_line(invoke("run", predictions, "--bootstrap", "0", "--json", target, "--markdown", target), 2)
    assert "--json writes the same file" in line
    assert not target.exists()


def test_refusal_comes_before_the_work(model_and_data, monkeypatch):
    """A refused output path costs nothing: the model is never run."""
    import calaudit.loaders.model_run as model_run

    model, data = model_and_data

    def explode(*args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("the model ran before the output paths were checked")

    monkeypatch.setattr(model_run, "run_model", explode)
    error_line(invoke("run", model, data, "--bootstrap", "0", "--json", model), 2)


# ------------------------------------------------------------------ calaudit fix -o


def test_fix_refuses_writing_into_the_data(model_and_data):
    model, data = model_and_data
    before = snapshot(data)
    line = error_line(invoke("fix", model, data, "-o", data / "features.npy"), 2)
    assert "-o" in line and "is inside the data directory" in line
    assert snapshot(data) == before


def test_fix_refuses_the_model_itself(model_and_data):
    model, data = model_and_data
    before = digest(model)
    error_line(invoke("fix", model, data, "-o", model, "--force"), 2)
    assert digest(model) == before


def test_fix_refuses_an_existing_file_unless_forced(tmp_path, model_and_data):
    model, data = model_and_data
    existing = tmp_path / "calibrated.onnx"
    existing.write_bytes(b"precious")
    line = error_line(invoke("fix", model, data, "-o", existing, "-q"), 2)
    assert "exists" in line and "--force" in line
    assert existing.read_bytes() == b"precious"
    result = invoke("fix", model, data, "-o", existing, "-q", "--force")
    assert result.exit_code == 0, result.output
    assert existing.read_bytes() != b"precious"
    import onnx

    onnx.checker.check_model(onnx.load(existing))
