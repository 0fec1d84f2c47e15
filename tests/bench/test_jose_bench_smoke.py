"""bench/jose_bench.py: the correctness checks the benchmark runs before timing anything.

No timing is asserted here; a benchmark of a wrong result is worthless, so these prove that every
candidate, the floor and its halves compute the right thing, and that a shared Verifier is safe.
"""

from __future__ import annotations

import pytest

from .scripts import load_script

# The peers' own warnings (joserfc on EdDSA, Authlib's deprecation) are theirs, not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore::joserfc.errors.SecurityWarning", "ignore::authlib.deprecate.AuthlibDeprecationWarning"
)
bench = load_script("jose_bench")


@pytest.fixture(scope="module", params=bench.ALGS)
def fixture(request: pytest.FixtureRequest) -> object:
    return bench.build_fixture(request.param)


def test_every_candidate_decodes_and_encodes_right_and_refuses_bad_tokens(fixture: object) -> None:
    # check_fixture raises AssertionError on any wrong claim, header or accepted bad token.
    accepted = bench.check_fixture(fixture)
    assert all(name in bench.PEERS for name, _ in accepted), accepted


def test_tessera_refuses_each_bad_token_with_its_own_error(fixture: object) -> None:
    bench.check_tessera_errors(fixture)


def test_unsupported_algorithms_are_named_with_a_reason(fixture: object) -> None:
    for candidate in bench.candidates(fixture):
        supported = candidate.decode is not None and candidate.encode is not None
        assert supported != bool(candidate.unsupported), candidate.name


@pytest.mark.parametrize("cache", [0, 1024])
def test_a_shared_verifier_answers_every_thread_right(cache: int) -> None:
    report = bench.run_threads(bench.build_fixture("HS256"), 0.1, cache=cache, valid=200)
    assert report.wrong == []
    assert all(counts["verified"] and counts["InvalidSignature"] for counts in report.counts)
