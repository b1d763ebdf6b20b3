"""The real-hands training stages: arguments checked first, a run made otherwise never resumed, and a stage's model
kept or shipped without losing the model that was there."""

from __future__ import annotations

import json
import shutil

import pytest

from utils import config, realtrain
from utils.training import RunFolder


def test_shares_that_leave_no_real_batches_are_refused_before_anything_loads(tmp_path):
    with pytest.raises(ValueError, match="together below 1"):
        realtrain.train_stage(tmp_path / "copiste", tmp_path / "start.keras", 1.0, "stage", rehearsal=0.6, dhsd_share=0.4)
    with pytest.raises(ValueError, match="--minutes"):
        realtrain.train_stage(tmp_path / "copiste", tmp_path / "start.keras", 0.0, "stage", rehearsal=0.2)


def test_a_stage_made_with_other_settings_is_not_resumed(tmp_path, monkeypatch):
    monkeypatch.setenv("HTR_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    start = tmp_path / "start.keras"
    start.write_bytes(b"a model")
    folder = tmp_path / "artifacts" / "realtrain" / "r3"
    folder.mkdir(parents=True)
    (folder / "history.csv").write_text("epoch,val_cer,seconds\n0,0.5,3\n", encoding="utf-8")
    folder.with_name("r3.settings.json").write_text(json.dumps({"minutes": 10.0}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"made with .*minutes 10\.0 \(now 20\.0\)"):
        realtrain.train_stage(tmp_path / "copiste", start, 20.0, "r3", rehearsal=0.2)


@pytest.fixture
def finished_stage(tmp_path, monkeypatch):
    """A finished stage in a temporary artifacts folder (the shipped model as its model) and a temporary models/."""
    monkeypatch.setenv("HTR_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setattr(config, "SHIPPED_MODELS_DIR", models)
    monkeypatch.setattr(config, "SHIPPED_MODEL", models / "crnn.keras")
    run = RunFolder(tmp_path / "artifacts" / "realtrain" / "r3")
    run.folder.mkdir(parents=True)
    shutil.copy(config.REPO_ROOT / "models" / "crnn.keras", run.model)
    (run.folder / "figures.json").write_text(json.dumps({"stage": "r3", "cer": {"copiste_test": 0.2}}), encoding="utf-8")
    return models


def test_keep_copies_a_stage_once_and_never_over_a_kept_one(finished_stage):
    kept = realtrain.keep_stage("r3")
    assert kept == finished_stage / "stages" / "r3.keras" and kept.is_file()
    assert json.loads(kept.with_suffix(".json").read_text(encoding="utf-8"))["stage"] == "r3"
    before = kept.read_bytes()
    with pytest.raises(FileExistsError, match="kept already"):
        realtrain.keep_stage("r3")
    assert kept.read_bytes() == before


def test_ship_moves_the_model_there_aside_and_records_the_stage(finished_stage):
    (finished_stage / "crnn.keras").write_bytes(b"the model someone shipped before")
    (finished_stage / "recipe.json").write_text(json.dumps({"preset": "compact"}), encoding="utf-8")
    shipped = realtrain.ship("r3")
    assert shipped == finished_stage / "crnn.keras" and shipped.stat().st_size > 1000
    aside = [path for path in finished_stage.glob("crnn.*.keras")]
    assert len(aside) == 1 and aside[0].read_bytes() == b"the model someone shipped before"
    recipe = json.loads((finished_stage / "recipe.json").read_text(encoding="utf-8"))
    assert recipe["preset"] == "compact" and recipe["real_stages"] == [{"stage": "r3", "cer": {"copiste_test": 0.2}}]
