//! YAML writes an empty section as `null` (`rule_files:` with only comments under it, as in
//! Prometheus's sample config); Prometheus reads that as empty. `or_default` makes a field
//! treat `null` like an absent key.

use serde::{Deserialize, Deserializer};

pub fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}
