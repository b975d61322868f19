"""Every generated sentence agrees with the figures it quotes.

The report's sentences choose words ("overconfident", "more often than", "not 97%")
from the audit's figures. A sentence can contradict itself when its words come from
one figure and its numbers from another ("107 of them wrong (5%), not the 10% or
fewer that the model's confidence promises"). These tests render the sentences of
many simulated audits (calibrated, over- and underconfident, mixed, tiny and large,
2 to 20 classes) and parse each claim back against the numbers printed beside it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import calaudit
from calaudit.report import narrative
from calaudit.reporters import markdown, terminal
from calaudit.stats.verdict import COLOUR_KEY, LEVEL_MEANINGS

# ---------------------------------------------------------------- simulated audits


def _simulated(seed: int):
    """One audit of a simulated model: the true probabilities are a softmax of random
    scores; the model reports them sharpened or flattened by a temperature (and, for
    some, shifted towards one class), so the set covers every verdict."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([12, 35, 80, 200, 600, 2000]))
    k = int(rng.choice([2, 3, 5, 10, 20]))
    scores = rng.normal(size=(n, k)) * rng.uniform(0.3, 4.0)
    truth = np.exp(scores - scores.max(axis=1, keepdims=True))
    truth /= truth.sum(axis=1, keepdims=True)
    # Labels drawn from the true probabilities: inverse-CDF, vectorised.
    y = (truth.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1).clip(0, k - 1)
    temperature = float(rng.choice([0.25, 0.5, 0.8, 1.0, 1.0, 1.5, 3.0]))
    reported = np.exp((scores - scores.max(axis=1, keepdims=True)) / temperature)
    if rng.uniform() < 0.2:  # a mixed model: a bias towards class 0
        reported[:, 0] *= rng.uniform(2.0, 6.0)
    reported /= reported.sum(axis=1, keepdims=True)
    return calaudit.audit(y, reported, bootstrap=0, seed=seed)


RESULTS = [_simulated(seed) for seed in range(90)]


def _number(text: str) -> float:
    """A percentage as printed: "83%" -> 83, "over 99%" -> 99.5, "under 1%" -> 0.5."""
    text = text.strip()
    if text.startswith("over "):
        return float(text[5:].rstrip("%")) + 0.5
    if text.startswith("under "):
        return float(text[6:].rstrip("%")) - 0.5
    return float(text.rstrip("%"))


def test_the_simulations_cover_every_verdict():
    keys = {result.verdict.key for result in RESULTS}
    levels = {result.verdict.level for result in RESULTS}
    assert keys == {"calibrated", "overconfident", "underconfident", "insufficient"}
    assert levels == {"green", "amber", "red", "grey"}
    assert any("some confidence bands" in r.verdict.headline for r in RESULTS), "no mixed verdict simulated"


# ---------------------------------------------------------------- the verdict


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: f"{r.verdict.key}-{r.n_samples}")
def test_verdict_headline_agrees_with_its_figures(result):
    headline = result.verdict.headline
    over = re.search(r"says it is (\S+(?: \S+%)?) sure, but it is right (\d+%)", headline)
    if over:
        assert _number(over.group(1)) > _number(over.group(2)), headline
    under = re.search(r"it is right (\d+%) of the time, more often than the (\S+(?: \S+%)?) it claims", headline)
    if under:
        assert _number(under.group(1)) > _number(under.group(2)), headline
    honest = re.search(r"face value: it says (\S+(?: \S+%)?) on average and is right (\d+%)", headline)
    if honest:
        assert abs(_number(honest.group(1)) - _number(honest.group(2))) <= 5.5, headline
    said = result.metrics["accuracy"] + result.metrics["confidence_gap"]
    if result.verdict.key == "overconfident" and over:
        assert said > result.metrics["accuracy"]
    if result.verdict.key == "underconfident" and under:
        assert said < result.metrics["accuracy"]


# ---------------------------------------------------------------- the first screen


def _first_screen_sentences(result) -> list[str]:
    bands = narrative.quoted_bands(result)
    icon = narrative.icon_array(bands)
    sentences = [band.text for band in bands]
    sentences += [text for text in (narrative.top_band_share(result, bands), narrative.single_band_note(bands),
                                    narrative.noise_sentence(result)) if text]
    sentences += narrative.decisions(result, bands)
    if icon:
        sentences.append(icon["text"])
    return sentences


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: f"{r.verdict.key}-{r.n_samples}")
def test_first_screen_sentences_agree_with_their_figures(result):
    for text in _first_screen_sentences(result):
        band = re.search(r"Of the ([\d,]+) times .* it was right (once|[\d,]+ times) \((\d+)%\)", text)
        if band:
            count = int(band.group(1).replace(",", ""))
            right = 1 if band.group(2) == "once" else int(band.group(2).split()[0].replace(",", ""))
            assert right <= count and int(band.group(3)) == round(100 * right / count), text
        likely = re.search(r"as about (\d+)% likely to be right, not (\S+(?: \S+%)?)\.", text)
        if likely:
            assert _number(likely.group(1)) < _number(likely.group(2)), text
        approved = re.search(r"passed ([\d,]+) calls, ([\d,]+) of them wrong \(([\d.]+)%\), (more than|no more than) "
                             r"the ([\d.]+)% its confidence promised", text)
        if approved:
            calls, wrong = (int(group.replace(",", "")) for group in approved.group(1, 2))
            shown_wrong, promised = float(approved.group(3)), float(approved.group(5))
            assert wrong <= calls, text
            assert (shown_wrong > promised) == (approved.group(4) == "more than"), text
        assert "or fewer that the model's confidence promises" not in text
        icon = re.search(r"about (\d+) were right and (\d+) (?:was|were) wrong", text)
        if icon:
            assert int(icon.group(1)) + int(icon.group(2)) == 100, text
        real = re.search(r"The gap is real, not chance: .* about ([\d.]+) percentage points .* this one shows (\d+(?:\.\d+)?)",
                         text)
        if real:
            assert float(real.group(2)) >= float(real.group(1)), text
        assert not re.search(r"\b1 cases\b|\(s\)", text), text


def test_overconfident_top_band_that_delivers_is_not_quoted_as_a_shortfall():
    """A model overconfident in its middle bands but honest at the top: the decisions
    never say "about 97% likely, not 97%" or that 3% wrong breaks a promise of 3%."""
    rng = np.random.default_rng(7)
    n = 4000
    top = rng.uniform(size=n) < 0.5
    confidence = np.where(top, 0.97, 0.75)
    # Honest at the top (exactly 97 of every 100 right), 30 points too sure below.
    right = np.where(top, np.arange(n) % 100 < 97, rng.uniform(size=n) < 0.45)
    p = np.column_stack([confidence, 1.0 - confidence])
    y = np.where(right, 0, 1)
    result = calaudit.audit(y, p, bootstrap=0)
    assert result.verdict.key == "overconfident"
    bands = narrative.quoted_bands(result)
    assert bands[0].band == "90-100%"
    items = narrative.decisions(result, bands)
    assert not any("likely to be right, not" in item for item in items), items
    approved = [item for item in items if item.startswith("Auto-approving")]
    assert all("no more than the" in item for item in approved), approved


def test_overconfident_top_band_quotes_the_promise_it_breaks():
    rng = np.random.default_rng(3)
    n = 3000
    right = rng.uniform(size=n) < 0.80
    p = np.column_stack([np.full(n, 0.96), np.full(n, 0.04)])
    result = calaudit.audit(np.where(right, 0, 1), p, bootstrap=0)
    items = narrative.decisions(result, narrative.quoted_bands(result))
    approved = [item for item in items if item.startswith("Auto-approving")]
    assert len(approved) == 1
    wrong = int((~right).sum())
    assert f"{n:,} calls, {wrong:,} of them wrong ({100 * wrong / n:.1f}%)" in approved[0]
    assert "more than the 4.0% its confidence promised (it said 96% on average there)" in approved[0]


# ---------------------------------------------------------------- terminal and summary.md


@pytest.mark.parametrize("result", RESULTS[:12], ids=lambda r: f"{r.verdict.key}-{r.n_samples}")
def test_terminal_and_markdown_state_the_verdict(result):
    verdict = result.verdict
    text = terminal.render(result)
    assert f"Verdict: {verdict.label} ({verdict.level}). {verdict.headline}" in text
    md = markdown.render(result).splitlines()
    # summary.md leads with the verdict sentence, right under its title.
    first = next(line for line in md[1:] if line.strip())
    assert first.startswith(f"**{verdict.label}** ({verdict.level}).")
    assert verdict.headline.split(":")[0] in first


def test_colour_key_names_every_colour_in_words():
    for level, meaning in LEVEL_MEANINGS.items():
        assert f"{level} for {meaning}" in COLOUR_KEY


@pytest.mark.parametrize(("margin", "text"), [(0.021, "2 percentage points"), (0.0096, "1 percentage point"),
                                              (0.0031, "0.3 percentage points"), (0.00042, "0.04 percentage points")])
def test_margin_of_a_large_sample_is_never_zero_points(margin, text):
    from calaudit.reporters.html import _points

    assert _points(margin) == text
