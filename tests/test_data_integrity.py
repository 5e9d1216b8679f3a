"""Integrity check of a CREMA-D copy against the shipped official manifest, and its CLI."""

import shutil

import pytest

from crema_exp.check_corpus import main as check_corpus
from crema_exp.data import check_integrity
from crema_exp.data.integrity import reference_manifest
from _helpers_data import SAMPLES

SAMPLE_NAMES = sorted(p.name for p in SAMPLES.glob("*.wav"))


def test_shipped_manifest_lists_the_whole_release():
    reference = reference_manifest()
    assert len(reference) == 7442 and reference["file"].is_unique
    assert set(SAMPLE_NAMES) <= set(reference["file"])


def test_real_samples_pass_as_a_subset_and_fail_as_a_complete_copy():
    partial = check_integrity(SAMPLES, expect_complete=False)
    assert partial.ok and partial.checked == 6
    complete = check_integrity(SAMPLES)
    assert not complete.ok and len(complete.missing) == 7442 - 6
    assert "1001_DFA_ANG_XX.wav" not in complete.missing


@pytest.fixture
def copy(tmp_path):
    """A copy of the samples in the release layout: root/AudioWAV/*.wav."""
    audio = tmp_path / "CREMA-D" / "AudioWAV"
    shutil.copytree(SAMPLES, audio, ignore=shutil.ignore_patterns("*.md"))
    return audio.parent


def test_flipped_bytes_fail_sha256_but_not_the_size_check(copy):
    clip = copy / "AudioWAV" / "1001_DFA_HAP_XX.wav"
    data = bytearray(clip.read_bytes())
    data[5000:5008] = bytes(b ^ 0xFF for b in data[5000:5008])
    clip.write_bytes(bytes(data))
    report = check_integrity(copy, expect_complete=False)
    assert [m.file for m in report.sha256_mismatch] == ["1001_DFA_HAP_XX.wav"]
    assert not report.ok and not report.size_mismatch
    assert check_integrity(copy, quick=True, expect_complete=False).ok  # sizes still agree


def test_truncated_and_extra_files_are_reported(copy):
    clip = copy / "AudioWAV" / "1001_DFA_SAD_XX.wav"
    clip.write_bytes(clip.read_bytes()[:1000])
    (copy / "AudioWAV" / "9999_XXX_ANG_XX.wav").write_bytes(b"RIFF")
    report = check_integrity(copy, quick=True, expect_complete=False)
    assert [(m.file, m.found) for m in report.size_mismatch] == [("1001_DFA_SAD_XX.wav", 1000)]
    assert report.extra == ["9999_XXX_ANG_XX.wav"]
    assert "1001_DFA_SAD_XX.wav" in report.summary()


def test_cli_exit_codes_and_summary(copy, capsys):
    assert check_corpus([str(copy), "--partial"]) == 0
    assert "OK" in capsys.readouterr().out
    assert check_corpus([str(copy), "--quick"]) == 1  # 7,436 files missing
    assert "7436 missing" in capsys.readouterr().out
    assert check_corpus([str(copy / "nowhere")]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert sorted(p.name for p in (copy / "AudioWAV").iterdir()) == SAMPLE_NAMES  # wrote nothing
