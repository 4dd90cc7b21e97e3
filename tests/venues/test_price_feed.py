import ape
import pytest

from tests.units import E8


@pytest.fixture(scope="module")
def pf(project, deployer, feeder):
    f = deployer.deploy(project.PriceFeed, "ETH / USD", 3_000 * E8)
    f.grantRole(f.FEEDER_ROLE(), feeder, sender=deployer)
    return f


def test_constructor__round_one_holds_initial_answer(pf, chain):
    assert pf.decimals() == 8
    assert pf.version() == 4
    assert pf.description() == "ETH / USD"
    round_id, answer, started, updated, answered_in = pf.latestRoundData()
    assert (round_id, answer, answered_in) == (1, 3_000 * E8, 1)
    assert started == updated
    assert pf.latestAnswer() == 3_000 * E8


def test_constructor__non_positive_answer__reverts(project, deployer):
    with ape.reverts("feed: answer must be positive"):
        deployer.deploy(project.PriceFeed, "ETH / USD", 0)


def test_set_price__starts_new_round_timestamped_now(pf, feeder, warp, chain):
    warp(100)
    tx = pf.set_price(3_100 * E8, sender=feeder)
    ts = chain.blocks[tx.block_number].timestamp
    assert pf.latestRoundData() == (2, 3_100 * E8, ts, ts, 2)
    assert pf.latest_round() == 2
    (updated,) = tx.events.filter(pf.AnswerUpdated)
    assert (updated.current, updated.roundId, updated.updatedAt) == (3_100 * E8, 2, ts)
    (new_round,) = tx.events.filter(pf.NewRound)
    assert (new_round.roundId, new_round.startedBy, new_round.startedAt) == (2, feeder.address, ts)


def test_set_price__keeps_history(pf, feeder):
    pf.set_price(3_100 * E8, sender=feeder)
    pf.set_price(2_900 * E8, sender=feeder)
    assert pf.getRoundData(1)[1] == 3_000 * E8
    assert pf.getRoundData(2)[1] == 3_100 * E8
    assert pf.getRoundData(3)[1] == 2_900 * E8


@pytest.mark.parametrize("answer", [0, -1])
def test_set_price__non_positive__reverts(pf, feeder, answer):
    with ape.reverts("feed: answer must be positive"):
        pf.set_price(answer, sender=feeder)


def test_set_price__not_feeder__reverts(pf, stranger):
    with ape.reverts("access_control: account is missing role"):
        pf.set_price(3_000 * E8, sender=stranger)


def test_set_price__revoked_feeder__reverts(pf, deployer, feeder):
    pf.revokeRole(pf.FEEDER_ROLE(), feeder, sender=deployer)
    with ape.reverts("access_control: account is missing role"):
        pf.set_price(3_000 * E8, sender=feeder)


def test_grant_role__only_admin(pf, stranger):
    role = pf.FEEDER_ROLE()
    with ape.reverts("access_control: account is missing role"):
        pf.grantRole(role, stranger, sender=stranger)


@pytest.mark.parametrize("round_id", [0, 2, 2**80 - 1])
def test_get_round_data__unknown_round__reverts(pf, round_id):
    with ape.reverts("feed: no data present"):
        pf.getRoundData(round_id)


ANSWER_MAX = 2**112 - 1  # a round is one packed word: answer | updated_at << 112 | round << 176


@pytest.mark.parametrize("answer", [ANSWER_MAX + 1, 2**127 - 1, 2**127, 2**255 - 1])
def test_set_price__answer_above_the_packed_width__reverts_round_data_unchanged(pf, feeder, answer):
    before = (pf.latest_round(), pf.latestRoundData(), pf.latestAnswer())
    with ape.reverts("feed: answer too large"):
        pf.set_price(answer, sender=feeder)
    assert (pf.latest_round(), pf.latestRoundData(), pf.latestAnswer()) == before


def test_set_price__largest_answer__round_trips_every_field(pf, feeder, chain):
    tx = pf.set_price(ANSWER_MAX, sender=feeder)
    ts = chain.blocks[tx.block_number].timestamp
    assert pf.latestRoundData() == (2, ANSWER_MAX, ts, ts, 2)
    assert pf.getRoundData(2) == (2, ANSWER_MAX, ts, ts, 2)
    assert pf.latestAnswer() == ANSWER_MAX
    assert pf.getRoundData(1)[1] == 3_000 * E8  # history unchanged
    tx = pf.set_price(1, sender=feeder)  # the smallest, after the largest: no bits left over
    ts3 = chain.blocks[tx.block_number].timestamp
    assert pf.latestRoundData() == (3, 1, ts3, ts3, 3)
    assert pf.getRoundData(2) == (2, ANSWER_MAX, ts, ts, 2)
