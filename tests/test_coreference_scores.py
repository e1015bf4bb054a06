"""MUC, B³, CEAFφ4 and the CoNLL F1 against the CoNLL-2012 reference scorer's own worked test cases.

The cases and their expected (recall, precision, F1) are those of the reference scorer v8.01
(github.com/conll/reference-coreference-scorers): `test/TestCases.README` gives each case's key
and response entities as letters ({a} {bc} {def}), `test/CorefMetricTestConfig.pm` the expected
figures (exact fractions where it gives them, else its five-digit values). A capital letter is an
overlapping mention of its own (TC-A-5, TC-A-6) or a duplicate of the lower-case one (TC-A-7,
TC-A-8, TC-A-9), as the README says case by case; duplicates are written here as the same mention.
"""

from __future__ import annotations

import pytest

from peftbench.tasks.coreference.scores import CorefScores, coref_metrics, deduplicated


def entities(text: str) -> list[list[str]]:
    """'{a} {bc} {def}' -> [['a'], ['b', 'c'], ['d', 'e', 'f']]; each character is one mention."""
    return [list(part.strip("{}")) for part in text.split()]


TC_A_KEY = "{a} {bc} {def}"
# (scorer case id, key, response, {metric: (recall, precision, F1)}) from CorefMetricTestConfig.pm.
CASES = [
    ("TC-A-1", TC_A_KEY, "{a} {bc} {def}", {"muc": (1, 1, 1), "b3": (1, 1, 1), "ceafe": (1, 1, 1)}),
    (
        "TC-A-2",
        TC_A_KEY,
        "{a} {de}",
        {"muc": (1 / 3, 1, 0.5), "b3": ((7 / 3) / 6, 1, 14 / 25), "ceafe": (0.6, 0.9, 0.72)},
    ),
    (
        "TC-A-3",
        TC_A_KEY,
        "{a} {bcx} {defy} {z}",
        {
            "muc": (1, 3 / 5, 0.75),
            "b3": (1, (4 + 7 / 12) / 9, 110 / 163),
            "ceafe": (0.88571, 0.66429, 0.75918),
        },
    ),
    (
        "TC-A-4",
        TC_A_KEY,
        "{a} {bcx} {dy} {z}",
        {
            "muc": (1 / 3, 1 / 3, 1 / 3),
            "b3": ((3 + 1 / 3) / 6, (1 + 4 / 3 + 1 / 2) / 7, 2 * (5 / 9) * (17 / 42) / (5 / 9 + 17 / 42)),
            "ceafe": (0.73333, 0.55, 0.62857),
        },
    ),
    (  # B overlaps b: a mention of its own, in b's response entity
        "TC-A-5",
        TC_A_KEY,
        "{a} {bcxB} {dy} {z}",
        {
            "muc": (1 / 3, 1 / 4, 2 / 7),
            "b3": ((3 + 1 / 3) / 6, 2.5 / 8, 2 * (5 / 9) * (5 / 16) / (5 / 9 + 5 / 16)),
            "ceafe": (0.68889, 0.51667, 0.59048),
        },
    ),
    (  # B overlaps b, in another response entity
        "TC-A-6",
        TC_A_KEY,
        "{a} {bcx} {dy} {Bz}",
        {
            "muc": (1 / 3, 1 / 4, 2 / 7),
            "b3": ((10 / 3) / 6, (1 + 4 / 3 + 1 / 2) / 8, 2 * (5 / 9) * (17 / 48) / (5 / 9 + 17 / 48)),
            "ceafe": (0.73333, 0.55, 0.62857),
        },
    ),
    (  # a duplicate of b in b's own entity: de-duplicated
        "TC-A-7",
        TC_A_KEY,
        "{a} {bcxb} {dy} {z}",
        {
            "muc": (1 / 3, 1 / 3, 1 / 3),
            "b3": ((10 / 3) / 6, (1 + 4 / 3 + 1 / 2) / 7, 2 * (5 / 9) * (17 / 42) / (5 / 9 + 17 / 42)),
            "ceafe": (0.73333, 0.55, 0.62857),
        },
    ),
    (  # a duplicate of b in another entity: the later one goes
        "TC-A-8",
        TC_A_KEY,
        "{a} {bcx} {dy} {bz}",
        {
            "muc": (1 / 3, 1 / 3, 1 / 3),
            "b3": ((10 / 3) / 6, (1 + 4 / 3 + 1 / 2) / 7, 2 * (5 / 9) * (17 / 42) / (5 / 9 + 17 / 42)),
            "ceafe": (0.73333, 0.55, 0.62857),
        },
    ),
    (  # b repeated ten times: B³ cannot be gamed once duplicates go
        "TC-A-9",
        TC_A_KEY,
        "{a} {bcx} {dy} {bbbbbbbbbbz}",
        {
            "muc": (1 / 3, 1 / 3, 1 / 3),
            "b3": ((10 / 3) / 6, (1 + 4 / 3 + 1 / 2) / 7, 2 * (5 / 9) * (17 / 42) / (5 / 9 + 17 / 42)),
            "ceafe": (0.73333, 0.55, 0.62857),
        },
    ),
    ("TC-A-10", TC_A_KEY, "{a} {b} {c} {d} {e} {f}", {"muc": (0, 0, 0), "b3": (3 / 6, 1, 2 / 3)}),
    (
        "TC-A-11",
        TC_A_KEY,
        "{abcdef}",
        {"muc": (1, 3 / 5, 6 / 8), "b3": (1, (1 / 6 + 2 * 2 / 6 + 3 * 3 / 6) / 6, 14 / 25)},
    ),
    (
        "TC-A-12",
        TC_A_KEY,
        "{a} {x} {y} {c} {d} {e} {z}",
        {
            "muc": (0, 0, 0),
            "b3": ((1 + 1 / 2 + 2 / 3) / 6, 4 / 7, 2 * (13 / 36) * (4 / 7) / (13 / 36 + 4 / 7)),
        },
    ),
    (
        "TC-A-13",
        TC_A_KEY,
        "{axycdez}",
        {
            "muc": (1 / 3, 1 / 6, 2 / 9),
            "b3": (
                (1 + 1 / 2 + 2 * 2 / 3) / 6,
                (1 / 7 + 1 / 7 + 2 * 2 / 7) / 7,
                2 * (17 / 36) * (6 / 49) / (17 / 36 + 6 / 49),
            ),
        },
    ),
    (  # from the B-cubed paper: a small entity merged into a big one
        "TC-D-1",
        "{12345} {67} {89ABC}",
        "{12345} {6789ABC}",
        {"muc": (1, 9 / 10, 2 * 0.9 / 1.9), "b3": (1, 16 / 21, 2 * (16 / 21) / (1 + 16 / 21))},
    ),
    (  # from the B-cubed paper: two big entities merged
        "TC-E-1",
        "{12345} {67} {89ABC}",
        "{1234589ABC} {67}",
        {"muc": (1, 9 / 10, 2 * 0.9 / 1.9), "b3": (1, 7 / 12, 2 * (7 / 12) / (1 + 7 / 12))},
    ),
    # From the MUC paper (Vilain et al., 1995).
    ("TC-F-1", "{ABCD}", "{AB} {CD}", {"muc": (2 / 3, 1, 2 * (2 / 3) / (2 / 3 + 1))}),
    ("TC-G-1", "{AB} {CD}", "{ABCD}", {"muc": (1, 2 / 3, 2 * (2 / 3) / (1 + 2 / 3))}),
    ("TC-H-1", "{ABCD}", "{ABCD}", {"muc": (1, 1, 1)}),
    ("TC-J-1", "{ABC}", "{AC}", {"muc": (1 / 2, 1, 2 * 0.5 / 1.5)}),
    ("TC-K-1", "{BCDEGHJ}", "{ABC} {DEF} {GHI}", {"muc": (3 / 6, 3 / 6, 3 / 6)}),
    ("TC-L-1", "{ABC} {DEFG}", "{AB} {CD} {FGH}", {"muc": (2 / 5, 2 / 4, 2 * 0.4 * 0.5 / 0.9)}),
    # TestCases.README only: identical entities, and identical singletons (MUC has no links to score).
    ("TC-M-1", "{abcdef}", "{abcdef}", {"muc": (1, 1, 1), "b3": (1, 1, 1), "ceafe": (1, 1, 1)}),
    ("TC-N-1", "{a} {b} {c} {d} {e} {f}", "{a} {b} {c} {d} {e} {f}", {"muc": (0, 0, 0), "b3": (1, 1, 1)}),
]


@pytest.mark.parametrize(("case", "key", "response", "expected"), CASES, ids=[c[0] for c in CASES])
def test_reference_scorer_cases(case: str, key: str, response: str, expected: dict[str, tuple]):
    scores = coref_metrics([(entities(key), entities(response))])
    for metric, (recall, precision, f1) in expected.items():
        got = (scores[f"{metric}_recall"], scores[f"{metric}_precision"], scores[f"{metric}_f1"])
        # The config's five-digit figures are rounded: 1e-5 absolute covers them.
        assert got == pytest.approx((recall, precision, f1), abs=1e-5), f"{case} {metric}"


def test_conll_f1_is_the_mean_of_the_three_f1s():
    scores = coref_metrics([(entities(TC_A_KEY), entities("{a} {bcx} {dy} {z}"))])  # TC-A-4
    expected = (1 / 3 + 2 * (5 / 9) * (17 / 42) / (5 / 9 + 17 / 42) + 0.62857) / 3
    assert scores["conll_f1"] == pytest.approx(expected, abs=1e-5)


def test_documents_add_counts_before_dividing():
    """Two documents are scored as the scorer scores a file: numerators and denominators summed."""
    tallied = CorefScores()
    tallied.add_document(entities("{ABCD}"), entities("{AB} {CD}"))  # MUC recall 2/3
    tallied.add_document(entities("{AB}"), entities("{AB}"))  # MUC recall 1/1
    assert tallied.metrics()["muc_recall"] == pytest.approx(3 / 4)  # not the mean of 2/3 and 1


def test_deduplication_keeps_the_first_occurrence():
    assert deduplicated([["b", "c", "x", "b"], ["d"], ["b"]]) == [["b", "c", "x"], ["d"]]
