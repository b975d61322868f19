"""The human figures read against their noise floor, in plain words.

Even a model that knew exactly how the crowd splits on each item would not score 0
against a handful of votes per item: the votes vary by chance. The floor
(:class:`calaudit.human.results.NoiseFloor`, docs/metrics.md section 13) says how much;
the sentences here set the model's figure beside it, with the vote depth it belongs to:
"26.0 points of probability out of place, where a model that knew the crowd's split
would show about 4.0 with 100 votes per item".

With few votes the floor is a lower estimate (the simulation starts from the observed
splits, which look more certain than the crowd): below :data:`DEEP_VOTES` votes per
item the sentences say "at least about" and call what is left "at most" the model's
own. Nothing here computes a statistic; the figures come from the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .human_narrative import range_text, value_text

if TYPE_CHECKING:
    from ..human.results import HumanAnalysis, NoiseFloor
    from ..result import AuditResult

#: From this median number of votes per item the floor is within about 5% of what a
#: crowd-equal model scores (benchmarks/bench_noise_floor.py: TVD 0.057 against 0.059
#: with 3 classes, 0.103 against 0.114 with 10); below it the sentences say "at least".
DEEP_VOTES = 50
#: The figure the sentences read (the one the report's first human sentence gives).
READ = "human_tvd"


@dataclass(frozen=True)
class FloorText:
    """What the report and the terminal say about the noise floor.

    ``sentences``: the model's figure against the floor, on every item and where people
    disagree. ``cells``: per metric, the floor as a table cell for every item, the hard
    and the easy items ("" where there is none). ``column``: the table's column title;
    ``part_label`` introduces the floor in a part's cell.
    """

    sentences: list[str]
    cells: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    column: str = "A model that knew people's split would show"
    part_label: str = "knowing people's split"


def depth_text(floor: NoiseFloor) -> str:
    """'5 votes per item (median)'."""
    votes = floor.votes_per_item
    return f"{votes:g} vote{'' if votes == 1 else 's'} per item (median)"


def _about(floor: NoiseFloor) -> str:
    return "about" if floor.votes_per_item >= DEEP_VOTES else "at least about"


def _points(value: float) -> str:
    return f"{value * 100:.1f}"


def reading_sentence(value: float | None, floor: NoiseFloor | None, *, where: str = "") -> str | None:
    """The model's probability out of place against a crowd-equal model's, in points,
    with the vote depth, and how much of it is the model's own. ``where`` names the
    part ("Where people disagree"); without it, every item."""
    found = floor.metrics.get(READ) if floor is not None else None
    if value is None or found is None:
        return None
    about = _about(floor)
    if where:
        text = (f"{where}, the model has {_points(value)} points out of place, where a model that knew the crowd's "
                f"split would show {about} {_points(found.value)} with {depth_text(floor)}")
    else:
        text = ("Even a model that knew exactly how the crowd splits would not score 0 here: with "
                f"{depth_text(floor)} the votes themselves vary by chance, and it would show {about} "
                f"{_points(found.value)} points of probability out of place. This model shows {_points(value)}")
    if value <= found.high:
        return text + (f", within what vote chance alone gives (between {_points(found.low)} and "
                       f"{_points(found.high)}): it cannot be told from a model that knew people's split.")
    own = "about" if about == "about" else "at most about"
    left = float(_points(value)) - float(_points(found.value))  # from the printed figures, so the sum reads right
    return text + f", so {own} {left:.1f} points are the model's own."


def floor_text(result: AuditResult) -> FloorText | None:
    """The floor sentences and table cells of a result (None without a floor: soft
    labels, or a result written before floors were computed)."""
    human: HumanAnalysis | None = result.human
    if human is None or human.noise_floor is None:
        return None
    sentences = [reading_sentence(human.metrics.get(READ), human.noise_floor)]
    hard = human.hard
    sentences.append(reading_sentence(hard.metrics.get(READ), hard.noise_floor, where="Where people disagree")
                     if hard.n else None)
    if human.noise_floor.votes_per_item < DEEP_VOTES:
        sentences.append("With this few votes per item, that figure for a model that knew the crowd's split is an "
                         "underestimate: a handful of votes looks more certain than the crowd behind it.")
    cells = {}
    for name in human.noise_floor.metrics:
        cells[name] = tuple(_cell(name, part) for part in (human.noise_floor, hard.noise_floor,
                                                            human.easy.noise_floor))
    return FloorText([text for text in sentences if text], cells)


def _cell(name: str, floor: NoiseFloor | None) -> str:
    found = floor.metrics.get(name) if floor is not None else None
    if found is None:
        return ""
    return f"{value_text(name, found.value)} ({range_text(name, (found.low, found.high))})"


def terminal_floor_lines(human: Any) -> list[str]:
    """The terminal's line under the table: what the floor is, and the model's figure
    read against it."""
    floor = human.noise_floor
    if floor is None:
        return []
    text = (f"  Noise floor: what a model equal to the crowd's split would show with {depth_text(floor)}, from "
            f"{floor.simulations} simulations of the votes (seed {floor.seed})")
    tvd, found = human.metrics.get(READ), floor.metrics.get(READ)
    if tvd is not None and found is not None:
        about = _about(floor)
        text += (f". Read against it: {READ} {tvd:.4f}, where a model that knew the crowd's split would show "
                 f"{about} {found.value:.4f} with {depth_text(floor)}"
                 + (" (a lower estimate with this few votes)" if about != "about" else ""))
    return [text + "."]
