"""`keeper.ops.deploy.deploy` (what `ape run deploy` runs) on ape's local test network."""

import dataclasses
import json

import pytest

from keeper.chain.manifest import manifest_path, write_manifest
from keeper.core.errors import UserError
from keeper.core.rules import VaultRules
from keeper.ops import deploy as deploy_module
from keeper.ops.config import parse_deploy_config
from keeper.ops.deploy import deploy, verify
from keeper.ops.deployment import Deployment, genesis_hash_of


def test_deploy__manifest_matches_the_chain(project, chain, deployed, admin, local_config):
    manifest, stats = deployed
    dep = verify(project, manifest)  # every rule read back from the vault
    assert manifest.chain_id == 31337
    assert manifest.genesis_hash == genesis_hash_of(chain)
    assert manifest.rules == dataclasses.asdict(VaultRules())
    assert len(manifest.rules) == 14
    assert manifest.owner == manifest.keeper == manifest.guardian == manifest.feeder == admin.address
    assert manifest.pending_owner is None and manifest.venue_deployed
    assert dep.vault.owner() == admin.address and dep.vault.is_keeper(admin)
    assert dep.vault.asset() == manifest.asset and dep.hedge.perp_market() == manifest.perp_market
    assert dep.vault.hedge() == manifest.hedge == dep.hedge.address and dep.hedge.vault() == manifest.vault
    assert dep.vault.asset_oracle() == manifest.asset_feed and dep.asset_feed.latestAnswer() == 10**8
    assert manifest.hedge_blueprint not in (manifest.vault, manifest.hedge)
    assert dep.hedge.keeper_loss_budget_bps() == 150 and dep.vault.max_depeg_bps() == 100
    assert dep.price_feed.latestAnswer() == 3_000 * 10**8
    assert dep.spot_pool.price_e8() == pytest.approx(3_000 * 10**8, rel=1e-6)
    assert dep.perp_market.pool_liquidity() == local_config.venue.deploy.to_params().asset_wei(50_000_000)
    # The figures the README quotes: one deploy of the venue (11: the asset feed is new), the
    # hedge blueprint and the vault (which creates its hedge).
    assert stats.transactions == manifest.transactions == 13
    assert 10_000_000 < stats.gas_used == manifest.gas_used < deploy_module.DEPLOY_GAS_ESTIMATE
    print(f"\ndeploy/local.yaml: {stats.transactions} transactions, {stats.gas_used:,} gas")


def test_deploy__load_checks_the_chain(project, chain, deployed, manifests):
    manifest, _ = deployed
    write_manifest(manifest)
    assert Deployment.load(project, chain).vault.address == manifest.vault
    restarted = manifest.model_copy(update={"genesis_hash": "0x" + "00" * 32})
    write_manifest(restarted, force=True)
    with pytest.raises(
        UserError, match=r"written for another chain with id 31337 \(was the node restarted\?\)"
    ):
        Deployment.load(project, chain)
    gone = manifest.model_copy(update={"vault": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"})
    write_manifest(gone, force=True)
    with pytest.raises(UserError, match="no contract at vault 0x3C44"):
        Deployment.load(project, chain)
    other = manifest.model_copy(update={"hedge": manifest.asset})
    write_manifest(other, force=True)
    with pytest.raises(
        UserError, match=f"vault {manifest.vault}'s hedge is {manifest.hedge}, not the manifest's"
    ):
        Deployment.load(project, chain)
    manifest_path(31337).unlink()
    with pytest.raises(UserError, match="no deployment for chain 31337"):
        Deployment.load(project, chain)


def test_deploy__owner_with_fees_gets_a_two_step_offer(project, chain, admin, alice, bob, local_config):
    data = local_config.model_dump(mode="json")
    data["vault"].update(management_fee_bps=100, performance_fee_bps=1_000, deposit_cap=5 * 10**12)
    data["roles"].update(owner=alice.address, keeper=bob.address, guardian=None, feeder=bob.address)
    manifest, stats = deploy(project, chain, admin, parse_deploy_config(data), network="test")
    vault = project.BasisVault.at(manifest.vault)
    assert vault.owner() == admin.address and vault.pending_owner() == alice.address
    assert manifest.owner == admin.address and manifest.pending_owner == alice.address
    assert (vault.management_fee_bps(), vault.performance_fee_bps(), vault.deposit_cap()) == (
        100,
        1_000,
        5 * 10**12,
    )
    assert vault.is_keeper(bob) and not vault.is_keeper(admin) and manifest.guardian is None
    feed, perp = project.PriceFeed.at(manifest.price_feed), project.PerpMarket.at(manifest.perp_market)
    assert feed.hasRole(feed.FEEDER_ROLE(), bob) and perp.hasRole(perp.OPERATOR_ROLE(), bob)
    assert feed.hasRole(feed.FEEDER_ROLE(), bob)
    asset_feed = project.PriceFeed.at(manifest.asset_feed)
    assert asset_feed.hasRole(asset_feed.FEEDER_ROLE(), bob)
    # venue (11), blueprint and vault; three role grants; set_fees + cap; the offer
    assert stats.transactions == 13 + 3 + 2 + 1


def test_deploy__owner_without_owner_calls_is_handed_over_at_once(project, chain, admin, alice, deployed):
    """Reuses the first deploy's venue (`mode: existing`) and hands the vault to alice in its constructor."""
    manifest, _ = deployed
    data = {
        "rules": manifest.rules,
        "roles": {"owner": alice.address},
        "venue": {"mode": "existing", "existing": manifest.addresses() | {}},
    }
    for key in ("vault", "hedge", "hedge_blueprint"):
        data["venue"]["existing"].pop(key)
    second, stats = deploy(project, chain, admin, parse_deploy_config(data), network="test")
    assert second.asset == manifest.asset and second.vault != manifest.vault
    assert second.asset_feed == manifest.asset_feed and second.hedge != manifest.hedge
    assert not second.venue_deployed and second.feeder is None
    assert project.BasisVault.at(second.vault).owner() == alice.address and second.pending_owner is None
    assert stats.transactions == 2  # the blueprint, the vault
    print(f"\nvault only (existing venue): {stats.gas_used:,} gas")
    verify(project, second)


def test_deploy__existing_venue_is_checked_first(project, chain, admin, deployed):
    manifest, _ = deployed
    existing = {
        k: v for k, v in manifest.addresses().items() if k not in ("vault", "hedge", "hedge_blueprint")
    }
    swapped = {**existing, "base": existing["asset"], "asset": existing["base"]}
    config = parse_deploy_config(
        {"rules": manifest.rules, "venue": {"mode": "existing", "existing": swapped}}
    )
    nonce = admin.nonce
    with pytest.raises(UserError, match=r"venue.existing: perp_market.asset\(\) is 0x.*, not the configured"):
        deploy(project, chain, admin, config, network="test")
    empty = {**existing, "spot_pool": "0x000000000000000000000000000000000000dEaD"}
    config = parse_deploy_config({"rules": manifest.rules, "venue": {"mode": "existing", "existing": empty}})
    with pytest.raises(UserError, match=r"venue\.existing\.spot_pool: no contract at 0x0+dEaD"):
        deploy(project, chain, admin, config, network="test")
    same = {**existing, "asset_feed": existing["price_feed"]}
    config = parse_deploy_config({"rules": manifest.rules, "venue": {"mode": "existing", "existing": same}})
    with pytest.raises(UserError, match=r"venue.existing.asset_feed is the price_feed"):
        deploy(project, chain, admin, config, network="test")
    feed = project.PriceFeed.at(existing["asset_feed"])
    feed.set_price(88_000_000, sender=admin)  # a de-pegged asset: every deposit would be refused
    config = parse_deploy_config(
        {"rules": manifest.rules, "venue": {"mode": "existing", "existing": existing}}
    )
    with pytest.raises(
        UserError, match=r"asset_feed answers 0.8800 USD, more than rules.max_depeg_bps \(100\)"
    ):
        deploy(project, chain, admin, config, network="test")
    feed.set_price(10**8, sender=admin)
    assert admin.nonce == nonce + 2  # the two feed pushes above, nothing else


def test_deploy__refuses_without_gas_money(project, chain, accounts, local_config):
    poor = accounts.generate_test_account()
    with pytest.raises(
        UserError, match=rf"account {poor.address} holds 0.000000 ETH; the deploy needs about"
    ):
        deploy(project, chain, poor, local_config, network="test")
    assert poor.nonce == 0


def test_deploy__failure_half_way_records_nothing(project, chain, admin, local_config, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("node went away")

    monkeypatch.setattr(deploy_module, "deploy_vault", broken)
    with pytest.raises(UserError) as info:
        deploy(project, chain, admin, local_config, network="test")
    message = str(info.value)
    assert message.startswith("deploy failed at 'deploy the vault': node went away; no manifest was written")
    assert "now abandoned: asset 0x" in message and "perp_market 0x" in message
    assert "asset_feed 0x" in message and "hedge_blueprint 0x" in message


def test_deploy__interrupted_half_way__records_what_it_left(
    project, chain, admin, local_config, monkeypatch, tmp_path
):
    # item 10 of the first-run issue: Ctrl-C at a confirmation prompt left contracts and no record
    from keeper.cli.deploy import _record_partial

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy_module, "deploy_vault", interrupted)
    monkeypatch.setenv("BASIS_DEPLOYMENTS_DIR", str(tmp_path))
    with pytest.raises(UserError) as info:
        deploy(
            project, chain, admin, local_config, network="test", record=lambda r: _record_partial(31337, r)
        )
    partial = tmp_path / "31337.partial.json"
    assert str(info.value).startswith("deploy failed at 'deploy the vault': KeyboardInterrupt")
    assert str(info.value).endswith(f"; recorded in {partial})")
    record = json.loads(partial.read_text())
    assert record["chain_id"] == 31337 and record["failed_at"] == "deploy the vault"
    assert record["deployer"] == admin.address and record["reason"] == "KeyboardInterrupt"
    assert {"asset", "base", "perp_market", "spot_pool", "hedge_blueprint"} <= set(record["contracts"])
    for address in record["contracts"].values():
        assert len(chain.provider.get_code(address)) > 0  # each one is really on chain
    assert not (tmp_path / "31337.json").exists()  # no manifest
