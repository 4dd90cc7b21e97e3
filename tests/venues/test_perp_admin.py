import ape
import pytest

from tests.units import USDC

DEFAULTS = dict(taker=450, im=500, mm=250, liq=50, age=3_600, depth=10**15)


def deploy(project, deployer, usdc, feed, **overrides):
    a = {**DEFAULTS, **overrides}
    return deployer.deploy(
        project.PerpMarket, usdc, feed, a["taker"], a["im"], a["mm"], a["liq"], a["age"], a["depth"]
    )


@pytest.mark.parametrize(
    "overrides,reason",
    [
        ({"taker": 10_001}, "perp: taker fee above maximum"),
        ({"mm": 0}, "perp: zero maintenance margin"),
        ({"im": 250}, "perp: initial margin <= maintenance"),
        ({"im": 10_001}, "perp: initial margin above 100%"),
        ({"liq": 251}, "perp: liquidation fee above maintenance"),
        ({"age": 0}, "perp: zero oracle age"),
        ({"depth": 0}, "perp: zero depth"),
    ],
)
def test_constructor__bad_params__revert(project, deployer, usdc, feed, overrides, reason):
    with ape.reverts(reason):
        deploy(project, deployer, usdc, feed, **overrides)


def test_constructor__zero_asset__reverts(project, deployer, feed):
    with ape.reverts("perp: zero asset"):
        deployer.deploy(project.PerpMarket, ape.utils.ZERO_ADDRESS, feed, 450, 500, 250, 50, 3_600, 10**15)


def test_constructor__records_params_and_roles(project, deployer, usdc, feed):
    m = deploy(project, deployer, usdc, feed)
    assert (m.taker_fee_ppm(), m.initial_margin_bps(), m.maintenance_margin_bps()) == (450, 500, 250)
    assert (m.liquidation_fee_bps(), m.max_oracle_age(), m.depth()) == (50, 3_600, 10**15)
    assert m.ASSET_UNIT() == USDC
    assert m.asset() == usdc.address and m.oracle() == feed.address
    assert m.hasRole(m.OPERATOR_ROLE(), deployer) and m.hasRole(m.DEFAULT_ADMIN_ROLE(), deployer)


def test_constructor__logs_depth_as_set_depth_does(project, deployer, usdc, feed, chain):
    m = deploy(project, deployer, usdc, feed)
    (log,) = chain.get_receipt(m.txn_hash).events.filter(m.DepthUpdated)
    assert (log.old_depth, log.new_depth) == (0, DEFAULTS["depth"])


def test_set_depth__operator_only_with_event(perp, operator, stranger):
    with ape.reverts("access_control: account is missing role"):
        perp.set_depth(1, sender=stranger)
    with ape.reverts("perp: zero depth"):
        perp.set_depth(0, sender=operator)
    old = perp.depth()
    tx = perp.set_depth(10**12, sender=operator)
    assert perp.depth() == 10**12
    (log,) = tx.events.filter(perp.DepthUpdated)
    assert (log.old_depth, log.new_depth) == (old, 10**12)


def test_roles__admin_grants_and_revokes_operator(perp, deployer, stranger):
    role = perp.OPERATOR_ROLE()
    with ape.reverts("access_control: account is missing role"):
        perp.grantRole(role, stranger, sender=stranger)
    tx = perp.grantRole(role, stranger, sender=deployer)
    assert len(tx.events.filter(perp.RoleGranted)) == 1
    perp.set_funding_rate(1, sender=stranger)
    perp.revokeRole(role, stranger, sender=deployer)
    with ape.reverts("access_control: account is missing role"):
        perp.set_funding_rate(1, sender=stranger)


def test_roles__admin_can_renounce(perp, deployer):
    admin = perp.DEFAULT_ADMIN_ROLE()
    perp.renounceRole(admin, deployer, sender=deployer)
    assert not perp.hasRole(admin, deployer)
