"""What the demo corpus contains: CREMA-D's names, actors, demographics and clip durations.

Everything here mirrors the real release so that code written against the demo corpus meets the
same names, level codes, class balance and duration spread as on CREMA-D. The real statistics are
compact constants (derived once from ``shared/crema-d/``); nothing reads that folder at run time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from scipy.special import ndtr

from crema_exp.config import EMOTIONS

EMOTION_CODES = dict(zip(EMOTIONS, ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")))
FIRST_ACTOR_ID = 1001
MAX_ACTORS = 91

# The 12 CREMA-D sentences as vowel sequences, one vowel per syllable of the spoken text
# (e.g. DFA "Don't forget a jacket" = o er e uh ae ih). Shared by every clip of a sentence, so the
# sentence, not the emotion, decides the phonetic content, as in the real corpus.
SENTENCE_VOWELS = {
    "IEO": ("ih", "ih", "e", "uh", "uh", "a"),  # It's eleven o'clock
    "TIE": ("ae", "ih", "ih", "ae", "i", "uh", "ae", "uh"),  # That is exactly what happened
    "IOM": ("a", "a", "a", "e", "u", "uh", "i", "ih"),  # I'm on my way to the meeting
    "IWW": ("a", "uh", "er", "uh", "ih", "ih", "uh", "a"),  # I wonder what this is about
    "TAI": ("uh", "e", "e", "ih", "a", "o", "oo"),  # The airplane is almost full
    "MTI": ("e", "i", "uh", "a", "o", "ih", "ih", "i", "o"),  # Maybe tomorrow it will be cold
    "IWL": ("a", "oo", "a", "uh", "u", "uh", "a", "a"),  # I would like a new alarm clock
    "ITH": ("a", "ih", "a", "ae", "uh", "a", "er", "uh", "o", "uh"),  # I think I have a doctor's appointment
    "DFA": ("o", "er", "e", "uh", "ae", "ih"),  # Don't forget a jacket
    "ITS": ("a", "ih", "a", "i", "ih", "ih", "o"),  # I think I've seen this before
    "TSI": ("uh", "er", "ih", "ih", "ih"),  # The surface is slick
    "WSI": ("i", "a", "ih", "uh", "uh", "uh", "uh", "ih", "ih"),  # We'll stop in a couple of minutes
}
SENTENCES = tuple(SENTENCE_VOWELS)
INTENSITY_SENTENCE = "IEO"  # the only sentence recorded at three intensities (LO MD HI)

# Duration model. DURATION_QUANTILES (seconds) are the quantiles at DURATION_QUANTILE_LEVELS of all
# 7,442 official clips, duration = (bytes - 44) / 32000 from shared/crema-d/audio_manifest.csv
# (np.quantile(durations, DURATION_QUANTILE_LEVELS), rounded to ms); the levels are finer in the
# tails, where the distribution is long. A clip's duration is the interpolated inverse CDF at
# Phi(z), where z adds actor, sentence and emotion effects measured on the same data (group means
# of the clips' normal scores); the clip's own noise makes the total variance of z one, so the
# overall distribution stays the real one.
DURATION_QUANTILE_LEVELS = (
    0.0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
    0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 0.995, 1.0,
)
DURATION_QUANTILES = (
    1.268, 1.568, 1.635, 1.735, 1.835, 1.935, 2.035, 2.102, 2.202, 2.269, 2.302, 2.369, 2.436, 2.502,
    2.536, 2.603, 2.669, 2.736, 2.836, 2.936, 3.036, 3.170, 3.470, 3.737, 4.037, 4.297, 5.005,
)
ACTOR_DURATION_SD = 0.46  # std over actors of their mean normal score
SENTENCE_DURATION_Z = {
    "IEO": -0.57, "TIE": 0.85, "IOM": -0.22, "IWW": -0.24, "TAI": 0.23, "MTI": 0.44,
    "IWL": 0.39, "ITH": 0.47, "DFA": -0.51, "ITS": 0.12, "TSI": -0.22, "WSI": 0.24,
}
EMOTION_DURATION_Z = {
    "anger": 0.09, "disgust": 0.44, "fear": -0.05, "happy": -0.41, "neutral": -0.21, "sad": 0.11,
}
CLIP_DURATION_SD = float(
    np.sqrt(
        1.0
        - ACTOR_DURATION_SD**2
        - np.var(list(SENTENCE_DURATION_Z.values()))
        - np.var(list(EMOTION_DURATION_Z.values()))
    )
)

# Shares of the real actors' demographics (VideoDemographics.csv: 91 actors aged 20-74).
RACES = {"Caucasian": 61, "African American": 22, "Asian": 7, "Unknown": 1}
HISPANIC_SHARE = 10 / 91
AGE_RANGE = (20, 74)


@dataclass(frozen=True)
class Actor:
    actor_id: int
    age: int
    sex: str  # "Male" | "Female"
    race: str
    ethnicity: str


@dataclass(frozen=True)
class Clip:
    actor: Actor
    sentence: str
    emotion: str  # full name, one of config.EMOTIONS
    level: str  # LO MD HI for emotional IEO clips, else XX

    @property
    def name(self) -> str:
        return f"{self.actor.actor_id}_{self.sentence}_{EMOTION_CODES[self.emotion]}_{self.level}"


def seeded_rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator fixed by the seed and a label (e.g. a clip name), independent of call order.

    The label goes through sha256 because Python's ``hash`` of a string changes between runs.
    """
    label = "\x1f".join(str(part) for part in parts).encode()
    words = np.frombuffer(hashlib.sha256(label).digest(), dtype=np.uint32)
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *words.tolist()])


def make_actors(seed: int, num_actors: int) -> list[Actor]:
    """Actors 1001.. whose traits depend only on (seed, actor id), so adding actors changes no one.

    Actors come in pairs (1001/1002, 1003/1004, ...) of one male and one female speaker, which keeps
    the sexes balanced (the real corpus has 48 male, 43 female).
    """
    if not 1 <= num_actors <= MAX_ACTORS:
        raise ValueError(
            f"data.synthetic.num_actors={num_actors}: CREMA-D has 1 to {MAX_ACTORS} actors"
        )
    races = list(RACES)
    race_p = np.array(list(RACES.values()), dtype=float) / sum(RACES.values())
    actors = []
    for index in range(num_actors):
        actor_id = FIRST_ACTOR_ID + index
        male_first = seeded_rng(seed, "actor-pair", index // 2).random() < 0.5
        sex = "Male" if (index % 2 == 0) == male_first else "Female"
        rng = seeded_rng(seed, "actor", actor_id)
        age = int(np.clip(round(AGE_RANGE[0] + rng.gamma(1.6, 10.0)), *AGE_RANGE))
        race = races[rng.choice(len(races), p=race_p)]
        ethnicity = "Hispanic" if rng.random() < HISPANIC_SHARE else "Not Hispanic"
        actors.append(Actor(actor_id, age, sex, race, ethnicity))
    return actors


def levels_for(sentence: str, emotion: str) -> tuple[str, ...]:
    """CREMA-D's level codes: IEO was recorded at three intensities except in neutral."""
    if sentence == INTENSITY_SENTENCE and emotion != "neutral":
        return ("LO", "MD", "HI")
    return ("XX",)


def plan_clips(
    actors: Iterable[Actor], sentences: Iterable[str], emotions: Iterable[str]
) -> list[Clip]:
    """Every (actor, sentence, emotion, level) clip, after checking the codes are CREMA-D's."""
    sentences, emotions = list(sentences), list(emotions)
    unknown = [s for s in sentences if s not in SENTENCE_VOWELS]
    if unknown:
        raise ValueError(
            f"data.synthetic.sentences: unknown codes {unknown}; CREMA-D has {list(SENTENCES)}"
        )
    unknown = [e for e in emotions if e not in EMOTION_CODES]
    if unknown:
        raise ValueError(
            f"data.synthetic.emotions: unknown names {unknown}; expected some of {list(EMOTIONS)}"
        )
    if not sentences or not emotions:
        raise ValueError("data.synthetic.sentences and data.synthetic.emotions must not be empty")
    return [
        Clip(actor, sentence, emotion, level)
        for actor in actors
        for sentence in dict.fromkeys(sentences)
        for emotion in dict.fromkeys(emotions)
        for level in levels_for(sentence, emotion)
    ]


def actor_duration_z(seed: int, actor: Actor) -> float:
    """How much slower than average this actor speaks, in duration z units."""
    return float(seeded_rng(seed, "actor-duration", actor.actor_id).normal(0.0, ACTOR_DURATION_SD))


def sample_duration(
    rng: np.random.Generator, actor_z: float, clip: Clip, min_duration: float, max_duration: float
) -> float:
    """A duration from the real distribution, shifted by actor, sentence and emotion; clipped."""
    fixed = actor_z + SENTENCE_DURATION_Z[clip.sentence] + EMOTION_DURATION_Z[clip.emotion]
    z = fixed + rng.normal(0.0, CLIP_DURATION_SD)
    seconds = np.interp(ndtr(z), DURATION_QUANTILE_LEVELS, DURATION_QUANTILES)
    return float(np.clip(seconds, min_duration, max_duration))
