"""CREMA-D's crowd ratings, voice-only: how many listeners chose each emotion for each clip.

The official ``tabulatedVotes.csv`` holds one row per clip and presentation; the first digit of its
unnamed index column is the presentation (the ``queryType`` of the CREMA-D docs: 1 voice only,
2 face only, 3 audio-visual) and the other five digits the clip number. Its columns ``A D F H N S``
count the responses per emotion, ``numResponses`` their sum, ``agreement`` the share of the most
chosen emotion and ``emoVote`` the majority (tied emotions joined by ``:``).

The project packages only what it needs, the voice-only counts, as ``reference/voice_votes.csv``
(``clip_id`` and one count column per emotion in EMOTIONS order); the same columns are what a
user-supplied table (``data.listener_votes``) must have.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from crema_exp.config import EMOTIONS

PACKAGED_VOTES = Path(__file__).parent / "reference" / "voice_votes.csv"
VOTE_COLUMNS = list(EMOTIONS)  # anger disgust fear happy neutral sad
OFFICIAL_CODES = ["A", "D", "F", "H", "N", "S"]  # same order as EMOTIONS
VOICE_ONLY = 1  # first digit of the tabulatedVotes index (queryType)
OFFICIAL_COLUMNS = ["", *OFFICIAL_CODES, "fileName", "numResponses", "agreement", "emoVote"]


class VotesError(ValueError):
    """A ratings table that cannot be used; the message names the file."""


def voice_votes_from_official(path: str | Path) -> pd.DataFrame:
    """The voice-only rows of the official tabulatedVotes.csv as a votes table (checked)."""
    path = Path(path)
    frame = _read(path)
    missing = [c for c in OFFICIAL_COLUMNS if c not in frame.columns]
    if missing:
        raise VotesError(f"{path}: not CREMA-D's tabulatedVotes.csv, missing columns {missing}")
    index = frame[""].astype(str)
    if not index.str.fullmatch(r"[123]\d{5}").all():
        bad = index[~index.str.fullmatch(r"[123]\d{5}")].head(3).tolist()
        raise VotesError(f"{path}: index values {bad} are not <presentation digit><5-digit clip>")
    voice = frame[index.str[0] == str(VOICE_ONLY)]
    counts = voice[OFFICIAL_CODES].to_numpy(np.int64)
    if (counts.sum(axis=1) != voice["numResponses"].to_numpy(np.int64)).any():
        raise VotesError(f"{path}: vote counts do not add up to numResponses")
    table = pd.DataFrame(counts, columns=VOTE_COLUMNS)
    table.insert(0, "clip_id", voice["fileName"].astype(str).to_numpy())
    return table


def read_votes(path: str | Path = PACKAGED_VOTES) -> pd.DataFrame:
    """A votes table (clip_id + one count column per emotion), indexed by clip_id."""
    path = Path(path)
    frame = _read(path)
    missing = [c for c in ["clip_id", *VOTE_COLUMNS] if c not in frame.columns]
    if missing:
        raise VotesError(
            f"{path}: missing columns {missing}; expected clip_id,{','.join(VOTE_COLUMNS)}")
    counts = frame[VOTE_COLUMNS]
    if not all(pd.api.types.is_integer_dtype(t) for t in counts.dtypes) or (counts < 0).any().any():
        raise VotesError(f"{path}: vote counts must be non-negative integers")
    twice = frame["clip_id"][frame["clip_id"].duplicated()]
    if len(twice):
        raise VotesError(f"{path}: clip ids listed twice: {twice.head(3).tolist()}")
    frame = frame[counts.sum(axis=1) > 0]  # a clip nobody rated tells nothing
    return frame.set_index("clip_id")[VOTE_COLUMNS]


def votes_for_corpus(data_cfg, layout: str | None) -> tuple[pd.DataFrame | None, str]:
    """The ratings for this corpus and where they come from, or (None, why there are none).

    ``data.listener_votes`` names a table explicitly; otherwise the real corpus in the official
    layout (CREMA-D's own clip names) gets the packaged table, and any other corpus has none.
    """
    explicit = getattr(data_cfg, "listener_votes", None)
    if explicit:
        return read_votes(explicit), str(explicit)
    if data_cfg.name == "crema_d" and layout == "official":
        return read_votes(PACKAGED_VOTES), "CREMA-D voice-only ratings (packaged)"
    return None, (f"no listener ratings for this corpus (data={data_cfg.name}, layout {layout}; "
                  "data.listener_votes=FILE.csv supplies them)")


def vote_distribution(votes: pd.DataFrame) -> np.ndarray:
    """[clips, classes] share of listeners choosing each emotion (rows sum to 1)."""
    counts = votes[VOTE_COLUMNS].to_numpy(np.float64)
    return counts / counts.sum(axis=1, keepdims=True)


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype={"clip_id": str, "fileName": str, "Unnamed: 0": str},
                           keep_default_na=False).rename(columns={"Unnamed: 0": ""})
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise VotesError(f"{path}: cannot read as CSV ({exc})") from exc


if __name__ == "__main__":  # regenerate the packaged table: python -m ... tabulatedVotes.csv OUT
    voice_votes_from_official(sys.argv[1]).to_csv(sys.argv[2], index=False)
