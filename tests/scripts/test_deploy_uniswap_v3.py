"""`ape run deploy` with `venue.spot`: the spot leg on Uniswap v3 deployed from the npm
artifacts (`uniswap-v3`), or on someone else's v3 deployment (`existing`), every address
in the manifest; a config naming the wrong pool is one error line before any transaction."""

import pytest

from keeper.chain.manifest import write_manifest
from keeper.core.errors import UserError
from keeper.ops.config import parse_deploy_config, with_spot
from keeper.ops.deploy import deploy, verify
from keeper.ops.deployment import Deployment
from keeper.ops.uniswap_v3 import container, full_range
from tests.checks import refused


def v3_config(local_config, **spot):
    data = local_config.model_dump(mode="json")
    data["venue"]["spot"] = {"kind": "uniswap-v3", **spot}
    data["venue"]["existing"] = None
    return parse_deploy_config(data)


@pytest.fixture(scope="module")
def deployed_v3(project, chain, admin, local_config):
    return deploy(project, chain, admin, v3_config(local_config), network="ethereum:local:foundry")


def test_deploy_v3__manifest_records_every_v3_address(project, chain, deployed_v3, manifests):
    manifest, stats = deployed_v3
    assert manifest.spot_kind == "uniswap-v3"
    v3 = manifest.uniswap_v3
    assert (v3["fee"], (v3["tick_lower"], v3["tick_upper"])) == (500, full_range(500))
    assert set(manifest.v3_addresses()) == {"factory", "router", "quoter", "position_manager", "pool"}
    dep = verify(project, manifest)
    adapter = dep.spot_pool
    assert dep.hedge.spot_pool() == manifest.spot_pool == adapter.address
    assert adapter.pool() == v3["pool"] and adapter.factory() == v3["factory"]
    assert (
        container("UniswapV3Factory").at(v3["factory"]).getPool(manifest.base, manifest.asset, 500)
        == v3["pool"]
    )
    assert container("NonfungiblePositionManager").at(v3["position_manager"]).ownerOf(v3["position_id"])
    assert adapter.price_e8() == pytest.approx(3_000 * 10**8, rel=1e-6)
    assert adapter.get_amount_out(manifest.asset, 3_000 * 10**6) > 0
    write_manifest(manifest)
    assert Deployment.load(project, chain).spot_pool.address == adapter.address
    print(f"\nvenue.spot uniswap-v3: {stats.transactions} transactions, {stats.gas_used:,} gas")


def existing_v3_config(manifest, **overrides):
    v3 = manifest.uniswap_v3
    existing = {
        k: manifest.addresses()[k] for k in ("asset", "base", "price_feed", "asset_feed", "perp_market")
    }
    spot = {
        "kind": "existing",
        "fee": 500,
        "existing": {k: v3[k] for k in ("factory", "pool", "router", "quoter", "position_manager")},
    }
    for key, value in overrides.items():
        where = existing if key in existing else spot["existing"] if key in spot["existing"] else spot
        where[key] = value
    return parse_deploy_config(
        {"rules": manifest.rules, "venue": {"mode": "existing", "existing": existing, "spot": spot}}
    )


def test_deploy_v3__existing_deployment__adapter_and_vault_only(project, chain, admin, deployed_v3):
    manifest, _ = deployed_v3
    second, stats = deploy(project, chain, admin, existing_v3_config(manifest), network="test")
    assert stats.transactions == 3  # the adapter, the blueprint, the vault
    print(f"\nvenue.spot existing: {stats.transactions} transactions, {stats.gas_used:,} gas")
    assert second.spot_kind == "existing" and second.uniswap_v3["pool"] == manifest.uniswap_v3["pool"]
    dep = verify(project, second)
    assert dep.hedge.spot_pool() == second.spot_pool != manifest.spot_pool
    assert dep.spot_pool.pool() == manifest.uniswap_v3["pool"]


def test_deploy_v3__wrong_fee_tier_or_tokens__one_error_before_any_transaction(
    project, chain, admin, deployed_v3
):
    manifest, _ = deployed_v3
    nonce = admin.nonce
    config = existing_v3_config(manifest, fee=3000)
    fee = r"venue\.spot\.fee is 3000, but pool 0x\w+ is the 500 fee tier"
    refused(fee, deploy, project, chain, admin, config, network="test")
    config = existing_v3_config(manifest, base=manifest.asset_feed)
    tokens = r"venue\.spot: pool 0x\w+ trades .*, not the vault's base"
    refused(tokens, deploy, project, chain, admin, config, network="test")
    pool = manifest.uniswap_v3["pool"]
    config = existing_v3_config(manifest, factory=pool)
    refused(r"venue\.spot\.existing\.factory: getPool\(\.\.\.\) reverted at 0x\w+: is it the v3 factory\?",
            deploy, project, chain, admin, config, network="test")  # fmt: skip
    assert admin.nonce == nonce


def test_spot_config__kinds_and_their_errors(local_config):
    data = local_config.model_dump(mode="json")
    assert parse_deploy_config(data).venue.spot.kind == "reference"
    assert v3_config(local_config, range_bps=500).venue.spot.range_bps == 500
    for spot, match in (
        ({"kind": "uniswap-v3", "fee": 550}, "not a tier a fresh v3 factory enables"),
        ({"kind": "existing"}, "lists no addresses"),
        ({"kind": "reference", "range_bps": 100}, "range_bps applies to kind 'uniswap-v3' only"),
        ({"kind": "existing", "existing": {"factory": "0x" + "11" * 20, "pool": "0x" + "22" * 20,
          "router": "0x" + "33" * 20, "quoter": "0x" + "44" * 20}}, "set mode: existing"),
    ):  # fmt: skip
        data["venue"]["spot"] = spot
        with pytest.raises(UserError, match=match):
            parse_deploy_config(data)


def test_spot_flag__overrides_the_config_kind(local_config):
    assert with_spot(local_config, "uniswap-v3").venue.spot.kind == "uniswap-v3"
    assert with_spot(v3_config(local_config, range_bps=300), "reference").venue.spot.range_bps is None
    data = local_config.model_dump(mode="json")
    data["venue"] = {"mode": "existing", "existing": {k: "0x" + "12" * 20 for k in
                     ("asset", "base", "price_feed", "asset_feed", "spot_pool", "perp_market")}}  # fmt: skip
    with pytest.raises(
        UserError, match=r"with --spot uniswap-v3: venue: spot\.kind 'uniswap-v3' seeds its pool"
    ):
        with_spot(parse_deploy_config(data), "uniswap-v3")
