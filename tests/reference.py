"""Naive reference rules that properties hold optimised code to, shared by several test modules."""

from core.estimators import flow_imbalance_permille


def flow_size_pcts_ref(flow, now_ns, p):
    # The rule as written before ``flow_size_pcts_at`` was split out: the imbalance, then the shrink.
    flow_pm = flow_imbalance_permille(flow, now_ns, p.flow_halflife_s, p.flow_min_qty)
    thr = p.flow_threshold_permille
    if abs(flow_pm) < thr:
        return flow_pm, 100, 100
    excess = (abs(flow_pm) - thr) / (1000 - thr) if thr < 1000 else 1.0
    pct = max(0, int(100 * (1 - p.flow_shrink * excess)))
    if flow_pm > 0:
        return flow_pm, 100, pct
    return flow_pm, pct, 100
