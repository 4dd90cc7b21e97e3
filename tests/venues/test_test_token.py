import ape
import pytest

from tests.units import USDC


@pytest.fixture(scope="module")
def token(project, deployer):
    return deployer.deploy(project.TestToken, "USD Coin (test)", "USDC", 6, 1_000 * USDC, 5 * USDC)


def test_constructor__sets_metadata_and_seeds_deployer(token, deployer):
    assert token.name() == "USD Coin (test)"
    assert token.symbol() == "USDC"
    assert token.decimals() == 6
    assert token.mint_cap() == 1_000 * USDC
    assert token.balanceOf(deployer) == 5 * USDC
    assert token.totalSupply() == 5 * USDC


def test_constructor__zero_mint_cap__reverts(project, deployer):
    with ape.reverts("token: zero mint cap"):
        deployer.deploy(project.TestToken, "T", "T", 6, 0, 0)


def test_constructor__decimals_above_36__reverts(project, deployer):
    with ape.reverts("token: decimals above 36"):
        deployer.deploy(project.TestToken, "T", "T", 37, 1, 0)


def test_mint__anyone_up_to_cap(token, stranger, alice):
    tx = token.mint(alice, 1_000 * USDC, sender=stranger)
    assert token.balanceOf(alice) == 1_000 * USDC
    (log,) = tx.events.filter(token.Transfer)
    assert (log.sender, log.receiver, log.value) == (ape.utils.ZERO_ADDRESS, alice.address, 1_000 * USDC)


def test_mint__above_cap__reverts(token, alice):
    with ape.reverts("token: amount above mint cap"):
        token.mint(alice, 1_000 * USDC + 1, sender=alice)


def test_mint__zero__reverts(token, alice):
    with ape.reverts("token: zero amount"):
        token.mint(alice, 0, sender=alice)


def test_mint__to_zero_address__reverts(token, alice):
    with ape.reverts("erc20: mint to the zero address"):
        token.mint(ape.utils.ZERO_ADDRESS, 1, sender=alice)


def test_deployer_has_no_minter_power(token):
    # snekmate's minter-gated `mint` and ownership functions are not exported.
    abi_names = {f.name for f in token.contract_type.mutable_methods}
    assert "set_minter" not in abi_names
    assert "transfer_ownership" not in abi_names


def test_transfer_and_approve(token, deployer, alice, bob):
    token.transfer(alice, USDC, sender=deployer)
    token.approve(bob, USDC, sender=alice)
    token.transferFrom(alice, bob, USDC, sender=bob)
    assert token.balanceOf(bob) == USDC
    assert token.allowance(alice, bob) == 0
