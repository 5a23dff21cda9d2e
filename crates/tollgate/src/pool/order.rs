//! The order in which a pool tries its keys for a call: the strategy decides, the
//! caller's region comes first, dedicated keys serve only their own client.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use super::{Caller, KeySet};
use crate::config::Strategy;

/// Key indexes to try, best first; `n` is the pool's rotation counter for this pick.
#[allow(clippy::too_many_arguments)]
pub fn candidates(
    pool: &KeySet,
    strategy: Strategy,
    n: usize,
    caller: Caller<'_>,
    bound: &HashSet<Arc<str>>,
    tried: &[Arc<str>],
    now: Instant,
    today: i64,
) -> Vec<usize> {
    let untried = |i: &usize| !tried.iter().any(|t| *t == pool.keys[*i].id);
    let own = caller
        .dedicated
        .and_then(|id| pool.keys.iter().position(|k| &*k.id == id));
    let uses_binding = matches!(strategy, Strategy::Dedicated | Strategy::Hybrid);
    if let (Some(own), true) = (own, uses_binding) {
        // A bound client uses its own key; with `dedicated`, only that one.
        let mut order: Vec<usize> = vec![own];
        if strategy == Strategy::Hybrid {
            order.extend(free_keys(pool, bound, Some(own)));
        }
        return order.into_iter().filter(untried).collect();
    }
    let free: Vec<usize> = free_keys(pool, bound, None).filter(untried).collect();
    if free.is_empty() {
        return free;
    }
    let mut order = match strategy {
        Strategy::RoundRobin | Strategy::Dedicated => rotated(&free, n),
        Strategy::Weighted => {
            let first = pool.weighted.get(n % pool.weighted.len().max(1)).copied();
            let mut order = rotated(&free, n);
            if let Some(pos) = first.and_then(|f| order.iter().position(|i| *i == f)) {
                let preferred = order.remove(pos);
                order.insert(0, preferred);
            }
            order
        }
        Strategy::LeastLoaded => least_loaded(pool, rotated(&free, n), now, today),
        Strategy::Hybrid => {
            let (same_tier, others): (Vec<usize>, Vec<usize>) =
                rotated(&free, n).into_iter().partition(|i| {
                    caller.tier.is_some() && pool.keys[*i].attributes.tier.as_deref() == caller.tier
                });
            let mut order = least_loaded(pool, same_tier, now, today);
            order.extend(least_loaded(pool, others, now, today));
            order
        }
    };
    if let Some(region) = caller.region {
        // Stable: the strategy's order within the preferred region, then the rest.
        order.sort_by_key(|i| pool.keys[*i].attributes.region.as_deref() != Some(region));
    }
    order
}

/// Keys no other client is bound to (plus `own`).
fn free_keys<'a>(
    pool: &'a KeySet,
    bound: &'a HashSet<Arc<str>>,
    own: Option<usize>,
) -> impl Iterator<Item = usize> + 'a {
    (0..pool.keys.len()).filter(move |i| Some(*i) != own && !bound.contains(&pool.keys[*i].id))
}

fn rotated(indexes: &[usize], n: usize) -> Vec<usize> {
    let start = n % indexes.len().max(1);
    indexes[start..]
        .iter()
        .chain(&indexes[..start])
        .copied()
        .collect()
}

/// Lowest utilization first (rpm, tpm, daily budget, and the upstream's own
/// remaining-quota headers); ties keep the rotated order.
fn least_loaded(pool: &KeySet, order: Vec<usize>, now: Instant, today: i64) -> Vec<usize> {
    let mut scored: Vec<(f64, usize)> = order
        .into_iter()
        .map(|i| {
            let key = &pool.keys[i];
            (
                key.with_state(|s| s.utilization(&key.attributes.limits, now, today)),
                i,
            )
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Smooth weighted round-robin (as nginx does it): over one cycle each key appears
/// `weight` times, spread out rather than in runs.
pub fn smooth_weighted(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut sequence = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(weights) {
            *c += i64::from(*w);
        }
        let Some((best, _)) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
        else {
            break;
        };
        current[best] -= total;
        sequence.push(best);
    }
    sequence
}
