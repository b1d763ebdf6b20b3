"""The shipped-model command: it never replaces what is in models/ unless asked to."""

from __future__ import annotations

from utils import config, pretrain


def test_existing_models_are_never_replaced_without_overwrite(tmp_path, capsys):
    (tmp_path / config.SHIPPED_MODEL.name).write_bytes(b"a model someone trained")
    assert pretrain.main(["--out", str(tmp_path), "--words", "50", "--minutes", "0.1"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / config.SHIPPED_MODEL.name).read_bytes() == b"a model someone trained"
    assert sorted(path.name for path in tmp_path.iterdir()) == [config.SHIPPED_MODEL.name]


def test_the_shipped_vocabulary_is_iam_s_whole_character_set():
    assert "".join(pretrain.shipped_vocabulary().characters) == config.IAM_CHARSET
