//! An action list compiled into one fate per attribute key.
//!
//! Actions apply in order to a key; drop, keep-only and hash look at one key only, so their
//! outcome for a key is computed once, at build time, and the hot path does one lookup per
//! entry. Renames and moves can make two entries meet on one key; rows where that can happen
//! replay the actions in order instead (see `runtime`).

use std::sync::Arc;

use phoenix_model::pipeline::AttributeAction;

/// What the action list does to an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    /// The entry is removed.
    Drop,
    /// The entry stays, possibly renamed, hashed or moved to the resource.
    Keep {
        /// New key, when renamed.
        rename: Option<Arc<str>>,
        /// Whether the value is replaced by its hash.
        hash: bool,
        /// Whether the entry moves to the resource.
        to_resource: bool,
    },
}

/// The fate of an entry no action touches.
pub(crate) const UNCHANGED: Fate = Fate::Keep {
    rename: None,
    hash: false,
    to_resource: false,
};

impl Fate {
    /// Whether the entry passes untouched.
    pub(crate) fn is_unchanged(&self) -> bool {
        *self == UNCHANGED
    }

    /// Whether the entry changes its key or map, and so may replace another entry: its row
    /// then needs the actions run in order (see `runtime`).
    pub(crate) fn moves_key(&self) -> bool {
        matches!(self, Fate::Keep { rename, to_resource, .. } if rename.is_some() || *to_resource)
    }
}

/// Index of [`Rules::default`] in a fate lookup.
pub(crate) const DEFAULT_FATE: u32 = u32::MAX;

/// A compiled action list.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// Fates of the keys the actions name.
    named: Vec<(Box<str>, Fate)>,
    /// Fate of every other key: dropped when a `keep_only` applies, else unchanged.
    default: Fate,
}

impl Rules {
    /// Compiles `actions`.
    pub(crate) fn compile(actions: &[AttributeAction]) -> Rules {
        let mut keys: Vec<&str> = Vec::new();
        for a in actions {
            match a {
                AttributeAction::Drop(k)
                | AttributeAction::KeepOnly(k)
                | AttributeAction::Hash(k)
                | AttributeAction::MoveToResource(k) => keys.extend(k.iter().map(String::as_str)),
                AttributeAction::Rename(r) => keys.extend([r.from.as_str(), r.to.as_str()]),
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let named: Vec<(Box<str>, Fate)> = keys
            .into_iter()
            .map(|k| (Box::from(k), simulate(actions, Some(k))))
            .collect();
        Rules {
            named,
            default: simulate(actions, None),
        }
    }

    /// Index of `key`'s fate ([`DEFAULT_FATE`] for keys the actions do not name).
    #[inline]
    pub(crate) fn lookup(&self, key: &str) -> u32 {
        // Action lists name a handful of keys: a scan beats hashing every entry.
        self.named
            .iter()
            .position(|(k, _)| &**k == key)
            .map_or(DEFAULT_FATE, |i| i as u32)
    }

    /// The fate at `index`.
    #[inline]
    pub(crate) fn fate(&self, index: u32) -> &Fate {
        if index == DEFAULT_FATE {
            &self.default
        } else {
            self.named
                .get(index as usize)
                .map_or(&self.default, |(_, f)| f)
        }
    }
}

/// Runs the actions over one key (`None`: a key no action names).
fn simulate(actions: &[AttributeAction], key: Option<&str>) -> Fate {
    let has = |list: &[String], k: Option<&str>| k.is_some_and(|k| list.iter().any(|x| x == k));
    let mut cur: Option<Arc<str>> = key.map(Arc::from);
    let mut renamed = false;
    let mut hash = false;
    for a in actions {
        let k = cur.as_deref();
        match a {
            AttributeAction::Drop(list) if has(list, k) => return Fate::Drop,
            AttributeAction::KeepOnly(list) if !has(list, k) => return Fate::Drop,
            AttributeAction::Rename(r) if k == Some(r.from.as_str()) => {
                cur = Some(Arc::from(r.to.as_str()));
                renamed = true;
            }
            AttributeAction::Hash(list) if has(list, k) => hash = true,
            AttributeAction::MoveToResource(list) if has(list, k) => {
                // Later attribute actions no longer see the entry.
                return Fate::Keep {
                    rename: cur.filter(|_| renamed),
                    hash,
                    to_resource: true,
                };
            }
            _ => {}
        }
    }
    Fate::Keep {
        rename: cur.filter(|_| renamed),
        hash,
        to_resource: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoenix_model::pipeline::Rename;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    /// Actions compose in order per key: rename then drop of the new name drops; keep_only
    /// drops unnamed keys; a moved key ignores later actions.
    #[test]
    fn fates_follow_action_order() {
        let rules = Rules::compile(&[
            AttributeAction::Rename(Rename {
                from: "a".into(),
                to: "b".into(),
            }),
            AttributeAction::Hash(keys(&["b", "h"])),
            AttributeAction::MoveToResource(keys(&["m"])),
            AttributeAction::KeepOnly(keys(&["b", "h", "k"])),
            AttributeAction::Drop(keys(&["k"])),
        ]);
        let fate = |k: &str| rules.fate(rules.lookup(k)).clone();
        assert_eq!(
            fate("a"),
            Fate::Keep {
                rename: Some(Arc::from("b")),
                hash: true,
                to_resource: false
            }
        );
        assert_eq!(
            fate("h"),
            Fate::Keep {
                rename: None,
                hash: true,
                to_resource: false
            }
        );
        assert_eq!(
            fate("m"),
            Fate::Keep {
                rename: None,
                hash: false,
                to_resource: true
            }
        );
        assert_eq!(fate("k"), Fate::Drop);
        assert_eq!(fate("other"), Fate::Drop, "keep_only drops unnamed keys");
        let plain = Rules::compile(&[AttributeAction::Drop(keys(&["x"]))]);
        assert!(plain.fate(plain.lookup("y")).is_unchanged());
    }
}
