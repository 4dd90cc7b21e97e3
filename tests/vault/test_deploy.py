import ape
import pytest

from keeper.core.rules import VaultRules

CODE_SIZE_LIMIT = 24_576  # EIP-170
CODE_SIZE_BUDGET = 22_000  # issue 10: each contract keeps >= 2.5k bytes of headroom


def test_deploy__rules_and_roles(vault, hedge, rules, gov, keeper, guardian, stranger, deployer, usdc, venue):
    assert vault.owner() == gov.address
    assert vault.is_keeper(keeper)
    assert vault.guardian() == guardian.address
    assert vault.fee_recipient() == stranger.address
    assert not vault.is_keeper(deployer)
    assert vault.decimals() == usdc.decimals() + vault.DECIMALS_OFFSET() == 12
    assert vault.asset() == usdc.address and vault.base() == venue.base.address
    assert vault.oracle() == venue.price_feed.address
    assert vault.asset_oracle() == venue.asset_feed.address
    # the two are linked for life, both ways
    assert vault.hedge() == hedge.address and hedge.vault() == vault.address
    assert hedge.asset() == usdc.address and hedge.base() == venue.base.address
    assert hedge.oracle() == venue.price_feed.address
    assert hedge.perp_market() == venue.perp_market.address
    assert hedge.spot_pool() == venue.spot_pool.address
    for name in rules.VAULT_FIELDS:
        assert getattr(vault, name)() == getattr(rules, name), name
    for name in rules.HEDGE_FIELDS:
        assert getattr(hedge, name)() == getattr(rules, name), name
    assert vault.deposit_cap() == rules.deposit_cap_ceiling
    assert hedge.KEEPER_BUDGET_WINDOW() == 86_400 and hedge.EMERGENCY_BUFFER_BPS() == 200


def test_deploy__emits_the_setter_events(create_vault, rules, keeper, guardian, stranger, chain):
    # The constructor sets the cap, fee recipient, guardian and first keeper through the
    # owner's `_set_*` functions, so the deploy logs what a later change would.
    vault = create_vault()
    receipt = chain.get_receipt(vault.txn_hash)
    (cap,) = receipt.events.filter(vault.DepositCapUpdated)
    assert (cap.old_cap, cap.new_cap) == (0, rules.deposit_cap_ceiling)
    (recipient,) = receipt.events.filter(vault.FeeRecipientUpdated)
    assert (recipient.old_recipient, recipient.new_recipient) == (ape.utils.ZERO_ADDRESS, stranger.address)
    (guard,) = receipt.events.filter(vault.GuardianUpdated)
    assert (guard.old_guardian, guard.new_guardian) == (ape.utils.ZERO_ADDRESS, guardian.address)
    (kept,) = receipt.events.filter(vault.KeeperUpdated)
    assert (kept.account, kept.status) == (keeper.address, True)


def test_deploy__without_a_keeper__logs_no_keeper(create_vault, chain):
    vault = create_vault(keeper=ape.utils.ZERO_ADDRESS, guardian=ape.utils.ZERO_ADDRESS)
    receipt = chain.get_receipt(vault.txn_hash)
    assert not receipt.events.filter(vault.KeeperUpdated)
    (guard,) = receipt.events.filter(vault.GuardianUpdated)
    assert guard.new_guardian == ape.utils.ZERO_ADDRESS


def test_deploy__code_size__each_contract_at_most_22000_bytes(vault, hedge, chain):
    sizes = {
        "BasisVault": len(chain.provider.get_code(vault.address)),
        "BasisHedge": len(chain.provider.get_code(hedge.address)),
    }
    print("code_size", sizes)
    for name, size in sizes.items():
        assert 0 < size <= CODE_SIZE_BUDGET, (
            f"{name} runtime {size} bytes > {CODE_SIZE_BUDGET} (sizes {sizes})"
        )
        assert size <= CODE_SIZE_LIMIT


# Every state-changing entry point each contract has. A new one must be added here on
# purpose, after checking that it cannot touch a rule (the rules are immutables).
VAULT_MUTATING = {
    "approve", "transfer", "transferFrom", "permit",  # shares
    "deposit", "mint", "withdraw", "redeem",  # ERC-4626
    "shutdown", "pause", "unpause", "lend_idle", "repay_idle",
    "set_keeper", "set_guardian", "set_deposit_cap", "set_fees", "set_fee_recipient",
    "transfer_ownership", "accept_ownership",
}  # fmt: skip
HEDGE_MUTATING = {"rebalance", "emergency_deleverage", "unwind", "sync", "exit_slice"}


def test_deploy__no_setter_can_change_a_rule(vault, hedge, rules):
    assert {m.name for m in vault.contract_type.mutable_methods} == VAULT_MUTATING
    assert {m.name for m in hedge.contract_type.mutable_methods} == HEDGE_MUTATING
    # each rule reads back as deployed, from an immutable getter on the contract enforcing it
    for name, value in vars(rules).items():
        owner = vault if name in rules.VAULT_FIELDS else hedge
        assert getattr(owner, name)() == value, name


def test_deploy__implements_every_erc4626_function(vault):
    abi = {(m.name, len(m.inputs)) for m in vault.contract_type.abi if m.type == "function"}
    for sig in [
        ("asset", 0), ("totalAssets", 0), ("convertToShares", 1), ("convertToAssets", 1),
        ("maxDeposit", 1), ("previewDeposit", 1), ("deposit", 2), ("maxMint", 1), ("previewMint", 1),
        ("mint", 2), ("maxWithdraw", 1), ("previewWithdraw", 1), ("withdraw", 3), ("maxRedeem", 1),
        ("previewRedeem", 1), ("redeem", 3),
        ("deposit", 3), ("withdraw", 4), ("redeem", 4),  # the slippage-protected forms
        ("permit", 7), ("nonces", 1), ("DOMAIN_SEPARATOR", 0),  # EIP-2612
    ]:  # fmt: skip
        assert sig in abi, sig


@pytest.mark.parametrize(
    "field,value,reason",
    [
        ("max_leverage_bps", 0, "hedge: zero max leverage"),
        ("critical_margin_ratio_bps", 0, "hedge: zero critical margin ratio"),
        ("critical_margin_ratio_bps", 2_000, "hedge: critical ratio >= min ratio"),
        ("min_margin_ratio_bps", 10_001, "hedge: min margin ratio above 100%"),
        ("min_margin_ratio_bps", 400, "hedge: critical ratio >= min ratio"),
        ("max_delta_bps", 10_001, "hedge: max delta above 100%"),
        ("max_slippage_bps", 0, "hedge: zero max slippage"),
        ("max_slippage_bps", 501, "hedge: max slippage above cap"),
        ("max_nav_loss_bps", 10_001, "hedge: max nav loss above 100%"),
        ("dead_man_interval", 0, "hedge: zero dead-man interval"),
        ("keeper_loss_budget_bps", 49, "hedge: keeper budget below one rebalance"),
        ("keeper_loss_budget_bps", 10_001, "hedge: keeper budget above 100%"),
        ("max_oracle_age", 0, "vault: zero max oracle age"),
        ("max_asset_oracle_age", 0, "vault: zero max asset oracle age"),
        ("max_depeg_bps", 1_001, "vault: max depeg above cap"),
        ("max_management_fee_bps", 501, "vault: management fee cap too high"),
        ("max_performance_fee_bps", 5_001, "vault: performance fee cap too high"),
        ("deposit_cap_ceiling", 0, "vault: zero deposit cap ceiling"),
    ],
)
def test_deploy__invalid_rule__reverts(create_vault, field, value, reason):
    with ape.reverts(reason):
        create_vault(VaultRules(**{field: value}))


def test_deploy__min_ratio_below_venue_initial_margin__reverts(create_vault):
    with ape.reverts("hedge: min ratio below venue IM"):
        create_vault(VaultRules(min_margin_ratio_bps=499, critical_margin_ratio_bps=100))


def test_deploy__zero_owner__reverts(create_vault):
    with ape.reverts("vault: zero owner"):
        create_vault(owner=ape.utils.ZERO_ADDRESS)
