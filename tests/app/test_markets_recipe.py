"""``just markets`` keeps enough markets for every route: the cache's filters and size (issue #12).

The recipe refreshes the market cache with one config, then routes it between the strategies. A
cache kept with one strategy's filters and limit could never fill the others' routes (the market
maker's 10 could not give the option seller 10 and the risk manager 15), so the cache's config must
be no stricter than any trading strategy's, and keep at least as many markets as all routes take.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from app.configfile import load_config


def recipe(name: str) -> list[list[str]]:
    lines = Path("justfile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{name}\b.*:\s*$", line))
    body = []
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        body.append(shlex.split(line.strip()))
    return body


def flag(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


def test_just_markets_caches_enough_markets_for_every_routes_limit():
    refresh, route = recipe("markets")
    assert refresh[:2] == ["polymm", "refresh-markets"] and route[:2] == ["polymm", "route-markets"]
    cache = load_config(flag(refresh, "--config"))
    sel = cache.market_selection
    limits = {s: int(flag(route, f"--{s}-limit")) for s in ("market-maker", "option-seller", "risk-manager")}
    # The risk manager watches every traded market: the traded ones fit in its route.
    assert limits["market-maker"] + limits["option-seller"] <= limits["risk-manager"]
    assert sel.limit >= sum(limits.values()) and sel.fetch_limit >= sel.limit

    for strategy in ("market-maker", "option-seller"):
        own = load_config(flag(route, f"--{strategy}-config")).market_selection
        assert sel.min_volume_24h <= own.min_volume_24h, strategy
        assert sel.min_liquidity <= own.min_liquidity, strategy
        assert sel.max_spread_cents >= own.max_spread_cents, strategy
        assert (
            sel.mid_price_band[0] <= own.mid_price_band[0] and sel.mid_price_band[1] >= own.mid_price_band[1]
        )
        assert set(sel.exclude_tags) <= set(own.exclude_tags), strategy
        assert sel.min_hours_to_end <= own.min_hours_to_end, strategy
        assert not sel.include_categories and set(sel.exclude_categories) <= set(own.exclude_categories)
    assert cache.ops.markets_json_path == load_config(flag(route, "--source-config")).ops.markets_json_path
