//! Maps looked up on every call (the key index, the model table, limit counters,
//! metric handles), hashed with foldhash instead of the standard library's SipHash:
//! a few of them per call, each a hash of a name, an id or a digest. The hash is
//! seeded per process; these maps are filled from the configuration, the store and
//! bounded label sets, never freely by clients.

/// A `HashMap` with the fast hash.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A concurrent map with the fast hash.
pub type FastDashMap<K, V> = dashmap::DashMap<K, V, foldhash::fast::RandomState>;
