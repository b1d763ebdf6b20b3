"""The shipped-model command: it never replaces what is in models/ unless asked to, nor reuses a stage made otherwise."""

from __future__ import annotations

import json

import pytest

from utils import config, pretrain, training
from utils.devices import default_preset


def test_existing_models_are_never_replaced_without_overwrite(tmp_path, capsys):
    (tmp_path / config.SHIPPED_MODEL.name).write_bytes(b"a model someone trained")
    assert pretrain.main(["--out", str(tmp_path), "--words", "50", "--minutes", "0.1"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / config.SHIPPED_MODEL.name).read_bytes() == b"a model someone trained"
    assert sorted(path.name for path in tmp_path.iterdir()) == [config.SHIPPED_MODEL.name]


def test_the_shipped_vocabulary_is_iam_s_whole_character_set():
    assert "".join(pretrain.shipped_vocabulary().characters) == config.IAM_CHARSET


def _stage_made_with(work, stage: str, **settings) -> None:
    """A stage folder holding a finished run, and the settings it records beside it."""
    folder = work / "pretrain" / stage
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"trained with other settings")
    (folder / "history.csv").write_text("epoch,val_cer,seconds\n0,0.5,3\n", encoding="utf-8")
    (work / "pretrain" / f"{stage}{pretrain.SETTINGS_SUFFIX}").write_text(json.dumps(settings), encoding="utf-8")


def test_a_stage_made_with_other_settings_is_refused_naming_them_before_anything_is_trained(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HTR_ARTIFACTS_DIR", str(tmp_path / "work"))
    made = {"words": 300, "seed": 42, "minutes": 0.05, "preset": default_preset(), "vocabulary": config.IAM_CHARSET}
    _stage_made_with(tmp_path / "work", "synthetic-only", **made)
    generated = []
    monkeypatch.setattr(pretrain, "generate_mini_iam", lambda *args, **kwargs: generated.append(args))
    status = pretrain.main(["--out", str(tmp_path / "B"), "--words", "400", "--minutes", "0.5", "--finetune-minutes", "0.5"])
    error = capsys.readouterr().err
    assert status == 2 and "words 300 (now 400)" in error and "minutes 0.05 (now 0.5)" in error
    assert "synthetic-only" in error and generated == [] and not (tmp_path / "B").exists()


def test_a_stage_without_a_record_of_its_settings_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HTR_ARTIFACTS_DIR", str(tmp_path / "work"))
    _stage_made_with(tmp_path / "work", "fine-tuned")
    (tmp_path / "work" / "pretrain" / f"fine-tuned{pretrain.SETTINGS_SUFFIX}").unlink()
    assert pretrain.main(["--out", str(tmp_path / "B"), "--words", "50", "--minutes", "0.1"]) == 2
    assert "settings are not recorded" in capsys.readouterr().err


def test_the_same_settings_reuse_a_stage_and_a_new_base_model_is_refused(tmp_path):
    run = pretrain.RunFolder(tmp_path / "fine-tuned")
    pretrain.check_stage(run, {"words": 300, "synthetic_model_sha256": "abc"})  # an empty stage: recorded
    run.folder.mkdir()
    (run.folder / "model.keras").write_bytes(b"x")
    pretrain.check_stage(run, {"words": 300})  # the arguments, checked before the base model exists
    pretrain.check_stage(run, {"words": 300, "synthetic_model_sha256": "abc"})
    with pytest.raises(ValueError, match="synthetic_model_sha256 'abc' \\(now 'def'\\)"):
        pretrain.check_stage(run, {"words": 300, "synthetic_model_sha256": "def"})


@pytest.mark.parametrize("flag", ["--minutes", "--finetune-minutes"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e3", "٣", " 5", ""])
def test_every_budget_that_is_not_a_positive_number_is_refused_at_the_start(flag, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        pretrain.main(["--out", str(tmp_path / "out"), flag, value])
    assert stop.value.code == 2
    assert f"argument {flag}: {value!r} is not a number above 0" in capsys.readouterr().err


@pytest.mark.parametrize("minutes", [0, -1.0, float("nan"), float("inf")])
def test_the_python_function_refuses_the_same_budgets(minutes, tmp_path):
    with pytest.raises(ValueError, match="--minutes must be a finite number above 0"):
        pretrain.pretrain(words=50, seed=1, minutes=minutes, finetune_minutes=1, out=tmp_path, overwrite=False)
    with pytest.raises(ValueError, match="a time budget"):
        training.TimeBudget(minutes)


@pytest.mark.parametrize("under", [False, True])
def test_an_out_that_is_a_file_is_refused_at_the_start_naming_out(under, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HTR_ARTIFACTS_DIR", str(tmp_path / "work"))
    file = tmp_path / "a-file"
    file.write_text("not a folder", encoding="utf-8")
    out = file / "models" if under else file
    assert pretrain.main(["--out", str(out), "--words", "50", "--minutes", "0.1"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: --out {out}") and "a file, not a folder" in error
    assert not (tmp_path / "work").exists()  # nothing was generated or trained
