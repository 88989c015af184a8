"""The strategy config's ``ops`` settings reach the live order gateway."""

from app.configfile import load_config
from app.live import gateway_config


def test_the_drift_resync_rule_reaches_the_gateway_and_null_turns_it_off(tmp_path):
    gw = gateway_config(load_config("configs/market_maker.yaml"))
    assert (gw.drift_resync_listings, gw.drift_resync_min_s) == (3, 120.0)
    path = tmp_path / "off.yaml"
    path.write_text("ops:\n  drift_resync_listings: null\n  drift_resync_min_s: 300\n")

    gw = gateway_config(load_config(path))

    assert (gw.drift_resync_listings, gw.drift_resync_min_s) == (None, 300.0)
