"""CREMA-D name parsing and the label spellings accepted in labels.csv."""

import pytest

from crema_exp.data.names import ClipNameError, parse_clip_name, parse_emotion_label
from crema_exp.data.tables import clip_key


def test_official_names_parse():
    name = parse_clip_name("1076_MTI_SAD_XX")
    assert (name.actor, name.sentence, name.emotion, name.level) == (1076, "MTI", "sad", "XX")
    assert parse_clip_name("1001_IEO_HAP_LO").level == "LO"
    assert parse_clip_name("1012_IEO_NEU_X").level == "X"


@pytest.mark.parametrize("clip_id,problem", [("1001_DFA_ANG", "malformed name"),
                                             ("1001-DFA-ANG-XX", "malformed name"),
                                             ("abcd_DFA_ANG_XX", "malformed name"),
                                             ("1001_DFA_CAL_XX", "unknown emotion code ('CAL'"),
                                             ("1001_DFA_ang_XX", "unknown emotion code"),
                                             ("1001_DFA_ANG_ZZ", "unknown intensity level")])
def test_bad_names_say_what_is_wrong(clip_id, problem):
    with pytest.raises(ClipNameError) as caught:
        parse_clip_name(clip_id)
    assert str(caught.value).startswith(problem)


@pytest.mark.parametrize("label,emotion", [("ANG", "anger"), ("anger", "anger"), ("Angry", "anger"),
                                           (" dis ", "disgust"), ("Fearful", "fear"),
                                           ("HAPPY", "happy"), ("neu", "neutral"), ("Sadness", "sad")])
def test_label_spellings(label, emotion):
    assert parse_emotion_label(label) == emotion


def test_unknown_labels_are_rejected():
    for label in ("calm", "", "0"):
        with pytest.raises(ValueError, match="unknown emotion label"):
            parse_emotion_label(label)


def test_clip_keys_ignore_folders_and_extension():
    for value in ("1001_DFA_ANG_XX", "1001_DFA_ANG_XX.wav", "train/1001_DFA_ANG_XX.WAV",
                  "C:\\data\\1001_DFA_ANG_XX.wav", "/abs/path/1001_DFA_ANG_XX.wav"):
        assert clip_key(value) == "1001_DFA_ANG_XX"
