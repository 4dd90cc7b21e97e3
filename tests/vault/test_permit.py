"""EIP-2612 `permit` is back (issue 10, bullet 1): a holder signs an EIP-712 Permit with an
ape test account; anyone submits it; the spender spends the allowance; a replay fails."""

import ape
import pytest
from eth_account.messages import encode_typed_data

from tests.units import USDC

PERMIT_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}


def sign_permit(vault, owner, spender, value, deadline, chain, nonce=None):
    message = encode_typed_data(
        full_message={
            "types": PERMIT_TYPES,
            "primaryType": "Permit",
            "domain": {
                "name": vault.name(),
                "version": "1",
                "chainId": chain.chain_id,
                "verifyingContract": vault.address,
            },
            "message": {
                "owner": owner.address,
                "spender": spender.address,
                "value": value,
                "nonce": vault.nonces(owner) if nonce is None else nonce,
                "deadline": deadline,
            },
        }
    )
    sig = owner.sign_message(message)
    return sig.v, sig.r, sig.s


@pytest.fixture
def holder(vault, alice):
    vault.deposit(1_000 * USDC, alice, sender=alice)
    return alice


def test_permit__signed_by_a_test_account__spender_redeems_and_replay_fails(
    vault, holder, bob, stranger, usdc, chain
):
    shares = vault.balanceOf(holder) // 2
    deadline = chain.pending_timestamp + 3_600
    v, r, s = sign_permit(vault, holder, bob, shares, deadline, chain)
    assert vault.nonces(holder) == 0
    tx = vault.permit(holder, bob, shares, deadline, v, r, s, sender=stranger)  # anyone submits
    (log,) = tx.events.filter(vault.Approval)
    assert (log.owner, log.spender, log.value) == (holder.address, bob.address, shares)
    assert vault.allowance(holder, bob) == shares and vault.nonces(holder) == 1
    before = usdc.balanceOf(bob)
    vault.redeem(shares, bob, holder, sender=bob)
    assert usdc.balanceOf(bob) - before == 500 * USDC
    assert vault.allowance(holder, bob) == 0
    with ape.reverts("erc20: invalid signature"):  # replayed: the nonce moved on
        vault.permit(holder, bob, shares, deadline, v, r, s, sender=stranger)


def test_permit__expired_or_wrong_signer__reverts(vault, holder, bob, stranger, chain):
    deadline = chain.pending_timestamp + 3_600
    v, r, s = sign_permit(vault, stranger, bob, 1, deadline, chain, nonce=0)
    with ape.reverts("erc20: invalid signature"):
        vault.permit(holder, bob, 1, deadline, v, r, s, sender=stranger)
    past = chain.blocks.head.timestamp - 1
    v, r, s = sign_permit(vault, holder, bob, 1, past, chain)
    with ape.reverts("erc20: expired deadline"):
        vault.permit(holder, bob, 1, past, v, r, s, sender=stranger)
