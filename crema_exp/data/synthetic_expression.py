"""How speaker, emotion and intensity shape the voice of one demo clip.

An emotion is a set of voice settings relative to neutral speech (after the acoustic correlates
reported for acted emotions: anger loud, high, tense and bright; sadness quiet, low, flat, lax and
breathy; happiness high with wide pitch movement; fear high, jittery, trembling; disgust low,
creaky and dark). Every actor has their own baseline (F0 by sex, vocal tract length, loudness,
voice quality), expressiveness and slightly personal way of showing each emotion, and every clip is
jittered, so classes overlap and actors held out of training are harder than seen ones.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from crema_exp.data.synthetic_plan import Actor, Clip, seeded_rng
from crema_exp.data.synthetic_voice import VoiceParams


@dataclass(frozen=True)
class Style:
    """Voice settings that emotions change; additive except where noted."""

    f0_st: float  # pitch shift in semitones from the actor's neutral F0
    f0_range: float  # factor on the actor's pitch accent range
    loudness_db: float
    open_quotient: float
    tilt: float
    breathiness: float
    jitter: float
    shimmer: float
    creak: float
    tremor_st: float
    f1_scale: float
    f2_scale: float
    bandwidth_scale: float
    consonant_db: float
    declination_st: float


# One emotion per row, values in Style's field order.
NEUTRAL = Style(0.0, 1.0, 0.0, 0.60, 0.35, 0.04, 0.006, 0.04, 0.00, 0.0, 1.00, 1.00, 1.00, -18.0, 2.0)
EMOTION_STYLES = {
    "anger": Style(4.0, 1.6, 7.0, 0.42, 0.12, 0.02, 0.010, 0.06, 0.00, 0.0, 1.08, 1.00, 0.85, -14.0, 3.0),
    "disgust": Style(-2.5, 1.1, -1.0, 0.60, 0.45, 0.06, 0.015, 0.08, 0.55, 0.0, 0.97, 0.97, 1.10, -18.0, 3.0),
    "fear": Style(6.0, 1.2, 1.0, 0.55, 0.28, 0.12, 0.035, 0.07, 0.00, 0.9, 1.00, 1.03, 1.05, -17.0, 0.5),
    "happy": Style(3.5, 2.2, 3.0, 0.50, 0.25, 0.04, 0.008, 0.04, 0.00, 0.0, 1.03, 1.10, 0.95, -17.0, 3.0),
    "neutral": NEUTRAL,
    "sad": Style(-1.5, 0.6, -7.0, 0.75, 0.55, 0.14, 0.012, 0.05, 0.15, 0.2, 0.95, 0.97, 1.25, -21.0, 1.0),
}
LEVEL_INTENSITY = {"LO": 0.5, "MD": 1.0, "HI": 1.5, "XX": 1.0}

# Spread of the random parts, in Style units: the same scale serves the actor's personal version
# of each emotion (ACTOR_STYLE_SPREAD times it) and the clip-to-clip variation (CLIP_STYLE_SPREAD).
STYLE_NOISE = Style(1.5, 0.25, 2.5, 0.05, 0.08, 0.02, 0.004, 0.015, 0.08, 0.15, 0.03, 0.03, 0.1, 2, 1)
ACTOR_STYLE_SPREAD = 0.4
CLIP_STYLE_SPREAD = 0.5
STYLE_LIMITS = {
    "f0_range": (0.2, 4.0), "open_quotient": (0.3, 0.9), "tilt": (0.0, 0.9),
    "breathiness": (0.0, 0.4),
    "jitter": (0.0, 0.08), "shimmer": (0.0, 0.2), "creak": (0.0, 0.8), "tremor_st": (0.0, 2.0),
    "bandwidth_scale": (0.5, 2.0),
}


@dataclass(frozen=True)
class ActorVoice:
    """One actor's fixed traits."""

    f0_hz: float
    f0_range_st: float
    formant_scale: float
    loudness_dbfs: float
    noise_dbfs: float
    expressiveness: float
    baseline: Style  # the actor's neutral voice quality


def _jittered(rng: np.random.Generator, style: Style, spread: float) -> Style:
    """``style`` plus Gaussian noise of ``spread`` times STYLE_NOISE in every setting."""
    noise = rng.standard_normal(len(fields(Style))) * spread
    names = [f.name for f in fields(Style)]
    return Style(
        **{name: getattr(style, name) + n * getattr(STYLE_NOISE, name) for name, n in zip(names, noise)}
    )


def _within_limits(style: Style) -> Style:
    """Clip the settings that have a physical range (a negative jitter means nothing)."""
    values = {f.name: getattr(style, f.name) for f in fields(Style)}
    for name, (low, high) in STYLE_LIMITS.items():
        values[name] = float(np.clip(values[name], low, high))
    return Style(**values)


def _blend(base: Style, emotion: Style, amount: float) -> Style:
    """``base`` moved by ``amount`` times the emotion's difference from neutral."""
    values = {}
    for f in fields(Style):
        change = getattr(emotion, f.name) - getattr(NEUTRAL, f.name)
        values[f.name] = getattr(base, f.name) + amount * change
    return Style(**values)


def actor_voice(seed: int, actor: Actor) -> ActorVoice:
    rng = seeded_rng(seed, "actor-voice", actor.actor_id)
    male = actor.sex == "Male"
    return ActorVoice(
        f0_hz=float((120.0 if male else 205.0) * rng.lognormal(0.0, 0.12)),
        f0_range_st=float(rng.uniform(1.0, 2.2)),
        formant_scale=float((1.0 if male else 1.16) * rng.normal(1.0, 0.04)),
        loudness_dbfs=float(rng.normal(-28.0, 2.0)),
        noise_dbfs=float(rng.normal(-58.0, 4.0)),
        expressiveness=float(rng.lognormal(0.0, 0.2)),
        baseline=_jittered(rng, NEUTRAL, 0.4),
    )


def clip_voice(seed: int, clip: Clip, rng: np.random.Generator) -> VoiceParams:
    """The voice of one clip: actor baseline + the actor's version of the emotion + clip jitter."""
    actor = actor_voice(seed, clip.actor)
    personal_rng = seeded_rng(seed, "actor-style", clip.actor.actor_id, clip.emotion)
    amount = LEVEL_INTENSITY[clip.level] * actor.expressiveness * rng.lognormal(0.0, 0.25)
    style = _blend(actor.baseline, EMOTION_STYLES[clip.emotion], amount)
    style = _jittered(personal_rng, style, ACTOR_STYLE_SPREAD)  # the actor's way of showing it
    style = _within_limits(_jittered(rng, style, CLIP_STYLE_SPREAD))
    return VoiceParams(
        f0_hz=actor.f0_hz * 2.0 ** (style.f0_st / 12.0),
        f0_range_st=actor.f0_range_st * style.f0_range,
        declination_st=style.declination_st,
        tremor_st=style.tremor_st,
        jitter=style.jitter,
        shimmer=style.shimmer,
        creak=style.creak,
        open_quotient=style.open_quotient,
        tilt=style.tilt,
        breathiness=style.breathiness,
        formant_scale=actor.formant_scale,
        f1_scale=style.f1_scale,
        f2_scale=style.f2_scale,
        bandwidth_scale=style.bandwidth_scale,
        consonant_db=style.consonant_db,
        loudness_dbfs=actor.loudness_dbfs + style.loudness_db,
        noise_dbfs=actor.noise_dbfs + float(rng.normal(0.0, 1.0)),
    )
