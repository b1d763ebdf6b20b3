"""The synthetic mini-IAM: IAM's format, held-out writers, planted defects, determinism, caching."""

from __future__ import annotations

import errno
import hashlib
import json
import pathlib

import numpy as np
import pytest

from utils import config, iam, synthetic


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini") / "mini-iam"
    synthetic.generate_mini_iam(root, words=300, seed=5, workers=2)
    return root


def _digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_dataset_whatever_the_worker_count(mini, tmp_path):
    again = tmp_path / "again"
    synthetic.generate_mini_iam(again, words=300, seed=5, workers=1)
    assert _digest(again) == _digest(mini)


def test_another_seed_gives_other_words(mini, tmp_path):
    other = synthetic.generate_mini_iam(tmp_path / "other", words=300, seed=6)
    texts = lambda root: [r.text for r in iam.parse_words_file(root / "words.txt").records]  # noqa: E731
    assert texts(other.root) != texts(mini)


def test_words_txt_is_in_iam_format_and_images_follow_iam_paths(mini):
    lines = (mini / "words.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#")
    result = iam.parse_words_file(mini / "words.txt")
    assert len(result.records) == 300 and result.problems == [] and result.duplicates == []
    for record in result.records:
        assert iam.WORD_ID_PATTERN.match(record.word_id)
        assert 0 < len(record.text) <= config.IAM_MAX_WORD_LENGTH
        assert set(record.text) <= set(config.IAM_CHARSET)
    first = result.records[0]
    assert first.path == mini / "words" / first.word_id[:3] / first.word_id[:7] / f"{first.word_id}.png"
    assert {r.status for r in result.records} == {"ok", "err"}


def test_planted_defects_are_found_by_the_loader(mini):
    meta = json.loads((mini / iam.SYNTHETIC_MARKER).read_text(encoding="utf-8"))
    dataset = iam.load_iam(mini)
    kinds = {p.word_id: p.kind for p in dataset.image_report.problems}
    assert kinds == {meta["defects"]["empty_image"]: "empty", meta["defects"]["missing_image"]: "missing"}
    # Image sizes in words.txt match the files, as IAM's bounding boxes do.
    for record in dataset.records:
        if record.word_id in dataset.image_report.sizes:
            assert dataset.image_report.sizes[record.word_id] == (record.w, record.h)


def test_validation_and_test_writers_are_never_seen_in_training(mini):
    dataset = iam.load_iam(mini)
    assert dataset.layout.synthetic and "split files" in dataset.split_method
    writers = {name: {r.writer_id for r in dataset.records if dataset.splits[r.word_id] == name} for name in config.SPLITS}
    assert all(writers.values())
    assert not writers["train"] & writers["validation"] and not writers["train"] & writers["test"]
    meta = json.loads((mini / iam.SYNTHETIC_MARKER).read_text(encoding="utf-8"))
    fonts = {w["writer_id"]: w["font"].removesuffix(".woff") for w in meta["writers"]}
    assert {fonts[w] for w in writers["test"]} <= set(config.SYNTHETIC_TEST_FONTS)
    counts = {name: sum(1 for s in dataset.splits.values() if s == name) for name in config.SPLITS}
    assert counts == {"train": 240, "validation": 30, "test": 30}


def test_word_mix_looks_like_iam():
    texts = synthetic.sample_texts(5000, seed=1)
    share = lambda test: sum(map(test, texts)) / len(texts)  # noqa: E731
    assert 0.06 < share(lambda t: t in synthetic.PUNCTUATION_TOKENS) < 0.14
    assert 0.005 < share(str.isdigit) < 0.03
    assert 0.08 < share(lambda t: t[:1].isupper()) < 0.25
    assert share(lambda t: t == "the") > 0.01  # frequent words are frequent
    assert not set("".join(texts)) - set(config.IAM_CHARSET)
    assert not {t.lower() for t in texts} & synthetic.BLOCKED_WORDS


def test_rendered_words_are_dark_ink_on_light_paper():
    style = synthetic.make_writers(seed=0)[0]
    image = synthetic.render_word("Handwriting", style, np.random.default_rng(0))
    assert image.dtype == np.uint8 and image.ndim == 2
    assert image.shape[1] > image.shape[0] > 10
    assert np.median(image) > 180 and image.min() < 120


def test_existing_mini_iam_is_reused_and_other_folders_are_never_overwritten(mini, tmp_path):
    before = _digest(mini)
    assert synthetic.generate_mini_iam(mini, words=300, seed=5).root == mini  # cache hit
    assert _digest(mini) == before
    with pytest.raises(FileExistsError, match="other parameters"):
        synthetic.generate_mini_iam(mini, words=301, seed=5)
    user = tmp_path / "my-work"
    user.mkdir()
    (user / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not empty"):
        synthetic.generate_mini_iam(user, words=50)
    assert (user / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_command_line_writes_a_dataset(tmp_path, capsys):
    assert synthetic.main([str(tmp_path / "cli"), "--words", "40", "--seed", "3"]) == 0
    assert "40 words" in capsys.readouterr().out
    assert len(iam.parse_words_file(tmp_path / "cli" / "words.txt").records) == 40


def test_more_writers_than_fonts_cycle_the_fonts_each_with_a_style_of_its_own(tmp_path):
    fonts = len(synthetic.font_paths())
    writers = synthetic.make_writers(seed=1, writers=2 * fonts + 3)
    assert len({w.writer_id for w in writers}) == 2 * fonts + 3
    same_font = [w for w in writers if w.font == writers[0].font]
    assert len(same_font) == 3 and len({(w.x_height, w.slant, w.ink) for w in same_font}) == 3
    # A font's writers share its split, so unseen fonts stay unseen however many writers there are.
    assert all(len({w.split for w in writers if w.font == font}) == 1 for font in {w.font for w in writers})

    root = synthetic.generate_mini_iam(tmp_path / "many", words=1500, seed=2, writers=fonts + 3,
                                       err_fraction=synthetic.IAM_SIZE["err_fraction"], workers=2).root  # fmt: skip
    dataset = iam.load_iam(root)
    forms = {r.word_id.rsplit("-", 2)[0] for r in dataset.records}
    # Writers take turns: each form has the next writer, until every writer wrote one.
    assert len({r.writer_id for r in dataset.records}) == min(fonts + 3, len(forms))
    err = sum(r.status == "err" for r in dataset.records) / len(dataset.records)
    assert err == pytest.approx(config.IAM_ERR_FRACTION, abs=0.05)  # IAM's 16% of err rows
    writers_of = {s: {r.writer_id for r in dataset.records if dataset.splits[r.word_id] == s} for s in config.SPLITS}
    assert not writers_of["train"] & (writers_of["validation"] | writers_of["test"])


def test_iam_size_option_asks_for_iam_s_words_writers_and_err_share(monkeypatch, tmp_path):
    calls = []

    def generate_nothing(*args):  # 115k images would take minutes: record what was asked, then stop
        calls.append(args)
        raise ValueError("stopped by the test")

    monkeypatch.setattr(synthetic, "generate_mini_iam", generate_nothing)
    assert synthetic.main([str(tmp_path / "iam"), "--iam-size"]) == 2
    _, words, _, writers, err_fraction = calls[0]
    assert (words, writers) == (115_320, 657) and err_fraction == pytest.approx(18_864 / 115_320)


def test_each_realism_switch_changes_the_word_and_none_of_them_is_plain():
    style = next(s for s in synthetic.make_writers(seed=0) if s.split == "train")
    plain = synthetic.render_word("Handwriting", style, np.random.default_rng(3), realism={})
    assert set(config.SYNTHETIC_REALISM) == {"pressure", "drift", "texture", "ruled", "squared", "shadow", "loose_crop",
                                             "threshold", "jpeg"}  # fmt: skip
    for switch in config.SYNTHETIC_REALISM:
        image = synthetic.render_word("Handwriting", style, np.random.default_rng(3), realism={switch: 1.0})
        assert image.dtype == np.uint8 and np.median(image) > 150 and image.min() < 120, switch  # still ink on paper
        assert image.shape != plain.shape or np.abs(image.astype(int) - plain).mean() > 0.5, switch
    loose = synthetic.render_word("Handwriting", style, np.random.default_rng(3), realism={"loose_crop": 1.0})
    assert loose.shape[0] > plain.shape[0] and loose.shape[1] > plain.shape[1]  # margins around the word
    thresholded = synthetic.render_word("Handwriting", style, np.random.default_rng(3), realism={"threshold": 1.0})
    assert np.mean(thresholded == 255) > 0.5  # IAM's look: the paper is white


def test_long_words_are_longer_spellable_and_without_umlauts():
    long_words = synthetic._long_words()
    assert len(long_words) > 10_000
    assert all(synthetic.LONG_WORD_LENGTH[0] <= len(w) <= synthetic.LONG_WORD_LENGTH[1] for w in long_words)
    assert not set("".join(long_words)) - set(config.IAM_CHARSET)
    texts = synthetic.sample_texts(5000, seed=1)
    assert 0.06 < sum(len(t) >= 7 for t in texts) / len(texts) < 0.35
    assert "Mühlbäch".translate(synthetic.UMLAUTS) == "Muhlbach" and "Straße".translate(synthetic.UMLAUTS) == "Strasse"


def test_a_cached_mini_iam_made_with_other_fonts_is_not_reused(mini, monkeypatch):
    monkeypatch.setattr(config, "SYNTHETIC_TEST_FONTS", ("kalam",))
    with pytest.raises(FileExistsError, match="other parameters"):
        synthetic.generate_mini_iam(mini, words=300, seed=5)


def test_realism_passed_to_the_generator_reaches_every_worker_and_the_cache_key(tmp_path):
    plain = synthetic.generate_mini_iam(tmp_path / "plain", words=600, seed=5, workers=2, realism={})
    default = synthetic.generate_mini_iam(tmp_path / "default", words=600, seed=5, workers=2)
    marker = json.loads((tmp_path / "plain" / synthetic.SYNTHETIC_MARKER).read_text(encoding="utf-8"))
    assert marker["params"]["realism"] == {}
    plain_images = sorted(plain.images_dir.rglob("*.png"))
    default_images = sorted(default.images_dir.rglob("*.png"))
    assert len(plain_images) == len(default_images) > 500
    # rendered in worker processes: without realism the words have no ruled lines, texture, JPEG, ...
    differing = sum(a.read_bytes() != b.read_bytes() for a, b in zip(plain_images[-200:], default_images[-200:]))
    assert differing > 100
    with pytest.raises(FileExistsError, match="other parameters"):  # the cache tells the two apart
        synthetic.generate_mini_iam(tmp_path / "plain", words=600, seed=5)
    with pytest.raises(ValueError, match="unknown realism switches"):
        synthetic.generate_mini_iam(tmp_path / "typo", words=600, seed=5, realism={"ruledd": 0.5})


# --- Issue 12: the output folder -------------------------------------------------------------
def test_command_line_into_a_folder_it_cannot_write_is_one_error_line(tmp_path, capsys):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder", encoding="utf-8")
    assert synthetic.main([str(in_the_way / "mini"), "--words", "20"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the mini-IAM into ") and str(in_the_way / "mini") in err and err.count("\n") == 1


def test_command_line_without_write_permission_is_one_error_line(tmp_path, monkeypatch, capsys):
    """chmod cannot stop root, who runs some test machines: the folder refuses as the kernel would for a user."""
    target = tmp_path / "read-only" / "mini"
    real_mkdir = pathlib.Path.mkdir

    def refusing_mkdir(self, *args, **kwargs):
        if tmp_path / "read-only" in self.parents:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", refusing_mkdir)
    assert synthetic.main([str(target), "--words", "20"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write the mini-IAM into {target}: Permission denied") and err.count("\n") == 1


def test_a_stale_partial_folder_is_removed_when_the_generator_starts_again(mini):
    stale = mini.with_name(mini.name + ".partial")
    (stale / "words").mkdir(parents=True)
    (stale / "words.txt").write_text("a01-000u-00-00 ok 1 1 1 1 1 NN stale\n", encoding="utf-8")
    assert synthetic.generate_mini_iam(mini, words=300, seed=5).root == mini  # a cache hit still cleans up
    assert not stale.exists()
