"""The shipped defaults are what the lab derives from Georgia Tech at this commit.

The rule's numbers and the background cohort are measurements of this code (detector,
crop, FaceNet), not constants of nature: a change that moves faces' boxes moves them too.
Derived again here, so that such a change fails the suite instead of leaving defaults that
no procedure gives (as happened between d054756 and aa6ab38: the lab derived 0.80 / 0.96
while 0.82 / 0.95 shipped)."""
import numpy as np
import pytest


@pytest.fixture(scope="module")
def georgia_tech_float(georgia_tech):
    """Georgia Tech embedded as the defaults are derived: float FaceNet (DERIVED_ON_EMBEDDER)."""
    from facebot.recognition import Recognizer
    from facebot.recognition.decision import DERIVED_ON_EMBEDDER
    from facebot.recognition.evaluate import embed_tree

    return embed_tree(georgia_tech, Recognizer(embedder=DERIVED_ON_EMBEDDER))


@pytest.mark.slow
def test_the_shipped_rule_is_what_lab_defaults_derives(georgia_tech_float):
    from facebot.lab.defaults import derive_rule
    from facebot.recognition.decision import DEFAULT_RULE

    derived = derive_rule(georgia_tech_float)
    shipped = (DEFAULT_RULE.low, DEFAULT_RULE.high, DEFAULT_RULE.ratio, DEFAULT_RULE.cohort_ratio)
    assert (derived.low, derived.high, derived.ratio, derived.cohort_ratio) == pytest.approx(shipped)


@pytest.mark.slow
def test_the_shipped_cohort_is_what_lab_cohort_builds(georgia_tech_float):
    """Row by row within 1e-4 rather than byte for byte: another CPU's float kernels may round
    the last bits differently."""
    from facebot.lab.cohort import build_cohort
    from facebot.recognition.decision import COHORT_IDENTITIES, default_cohort

    rebuilt = build_cohort(georgia_tech_float, list(COHORT_IDENTITIES))
    assert np.abs(rebuilt - default_cohort().matrix).max() < 1e-4
