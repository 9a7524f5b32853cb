//! Groups: the tuple of `group_by` tag values of an event, interned to a dense [`GroupId`],
//! and the per-batch memo that resolves each row's group from batch-local dictionary keys.
//!
//! Interning hashes tag strings once per distinct key tuple per batch; every other row of the
//! batch resolves its group with an array index (one `group_by` tag) or a hash of a few
//! `u32`s (several tags). Groups are never removed, so ids stay valid for the life of a
//! rollup even after all of a group's windows are evicted.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tidewatch_types::EventBatch;
use tidewatch_types::batch::NULL_TAG;

/// The values of the `group_by` tags, in `group_by` order; `None` is a null tag.
pub(crate) type GroupKey = Box<[Option<Arc<str>>]>;

/// A group of one rollup: stable for the life of the [`crate::Rollup`]; resolve it with
/// [`crate::Rollup::group_values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId(pub(crate) u32);

impl GroupId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Every group seen so far, addressable by id and by key. Window cells live per width in
/// `WidthCells`, indexed by the same ids.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    keys: Vec<GroupKey>,
    /// Keyed by user-controlled strings, so it keeps std's DoS-resistant hasher; it is only
    /// consulted on a memo miss, once per distinct key tuple per batch.
    index: HashMap<GroupKey, u32>,
}

impl Groups {
    pub(crate) fn key(&self, id: GroupId) -> Option<&GroupKey> {
        self.keys.get(id.index())
    }

    /// Ids and keys, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (GroupId, &GroupKey)> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, key)| (GroupId(i as u32), key))
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Appends `key` as the next group while loading a checkpoint. `None` if the key is
    /// already a group or the id space is exhausted: ids must stay unique.
    pub(crate) fn push_restored(&mut self, key: GroupKey) -> Option<GroupId> {
        let id = u32::try_from(self.keys.len())
            .ok()
            .filter(|&id| id != UNRESOLVED)?;
        if self.index.contains_key(&key) {
            return None;
        }
        self.index.insert(key.clone(), id);
        self.keys.push(key);
        Some(GroupId(id))
    }

    /// The id of `key`, creating the group if new. `None` only if the id space (u32) is
    /// exhausted.
    fn intern(&mut self, key: &[Option<Arc<str>>]) -> Option<u32> {
        if let Some(&id) = self.index.get(key) {
            return Some(id);
        }
        let id = u32::try_from(self.keys.len())
            .ok()
            .filter(|&id| id != UNRESOLVED)?;
        let key: GroupKey = key.into();
        self.index.insert(key.clone(), id);
        self.keys.push(key);
        Some(id)
    }
}

/// Marks "not resolved yet" in the memo, and "no group" in the resolved ids.
pub(crate) const UNRESOLVED: u32 = u32::MAX;

/// Per-batch resolution of rows to group ids. Its buffers are reused across batches, so a
/// steady stream allocates nothing here.
#[derive(Debug, Default)]
pub(crate) struct GroupResolver {
    /// One `group_by` tag: group id per dictionary key, the last slot for null.
    by_key: Vec<u32>,
    /// Several `group_by` tags: group id per tuple of dictionary keys.
    by_tuple: HashMap<Box<[u32]>, u32, BuildHasherDefault<FxHasher>>,
    tuple: Vec<u32>,
    values: Vec<Option<Arc<str>>>,
    /// Output: the group id of each row (`UNRESOLVED` if it has none).
    pub(crate) rows: Vec<u32>,
}

impl GroupResolver {
    /// Fills `self.rows` with the group of each of the first `len` rows of `batch`.
    /// `tags` are the schema indices of the `group_by` tags. Missing columns and keys outside
    /// the dictionary read as null rather than panicking.
    pub(crate) fn resolve(
        &mut self,
        groups: &mut Groups,
        tags: &[usize],
        batch: &EventBatch,
        len: usize,
    ) {
        self.rows.clear();
        match tags {
            [] => {
                let id = groups.intern(&[]).unwrap_or(UNRESOLVED);
                self.rows.resize(len, id);
            }
            &[tag] => {
                let column = batch.tags.get(tag);
                let dict_len = column.map_or(0, |c| c.dict.len());
                self.by_key.clear();
                self.by_key.resize(dict_len + 1, UNRESOLVED);
                for row in 0..len {
                    let key =
                        column.map_or(NULL_TAG, |c| c.keys.get(row).copied().unwrap_or(NULL_TAG));
                    let slot = if (key as usize) < dict_len {
                        key as usize
                    } else {
                        dict_len
                    };
                    let mut id = self.by_key[slot];
                    if id == UNRESOLVED {
                        let value = column.and_then(|c| c.dict.get(slot)).cloned();
                        id = groups.intern(&[value]).unwrap_or(UNRESOLVED);
                        self.by_key[slot] = id;
                    }
                    self.rows.push(id);
                }
            }
            _ => {
                self.by_tuple.clear();
                for row in 0..len {
                    self.tuple.clear();
                    for &tag in tags {
                        let column = batch.tags.get(tag);
                        let key = column
                            .and_then(|c| {
                                c.keys
                                    .get(row)
                                    .copied()
                                    .filter(|&k| (k as usize) < c.dict.len())
                            })
                            .unwrap_or(NULL_TAG);
                        self.tuple.push(key);
                    }
                    let id = match self.by_tuple.get(self.tuple.as_slice()) {
                        Some(&id) => id,
                        None => {
                            self.values.clear();
                            for (&tag, &key) in tags.iter().zip(&self.tuple) {
                                let value =
                                    batch.tags.get(tag).and_then(|c| c.dict.get(key as usize));
                                self.values.push(value.cloned());
                            }
                            let id = groups.intern(&self.values).unwrap_or(UNRESOLVED);
                            self.by_tuple.insert(self.tuple.as_slice().into(), id);
                            id
                        }
                    };
                    self.rows.push(id);
                }
            }
        }
    }
}

/// A small, fast, deterministic hasher (the FxHash mixing step) for the batch-local memo,
/// whose keys are dictionary indices, not user-controlled strings.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use tidewatch_types::TagColumn;

    use super::*;

    fn column(keys: &[u32], dict: &[&str]) -> TagColumn {
        TagColumn {
            keys: keys.to_vec(),
            dict: dict.iter().map(|s| Arc::from(*s)).collect(),
        }
    }

    fn batch(tags: Vec<TagColumn>, len: usize) -> EventBatch {
        EventBatch {
            ids: vec![0; len],
            ts: vec![0; len],
            tags,
            fields: vec![],
        }
    }

    fn keys(groups: &Groups, resolver: &GroupResolver) -> Vec<Vec<Option<String>>> {
        resolver
            .rows
            .iter()
            .map(|&id| {
                groups
                    .key(GroupId(id))
                    .unwrap()
                    .iter()
                    .map(|v| v.as_deref().map(str::to_owned))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn one_tag_groups_share_ids_across_batches_with_different_dictionaries() {
        let mut groups = Groups::default();
        let mut resolver = GroupResolver::default();
        let b1 = batch(vec![column(&[0, 1, 0, NULL_TAG, 7], &["BTC", "ETH"])], 5);
        resolver.resolve(&mut groups, &[0], &b1, 5);
        let first = resolver.rows.clone();
        assert_eq!(first[0], first[2]);
        assert_ne!(first[0], first[1]);
        // A key outside the dictionary reads as null, like NULL_TAG.
        assert_eq!(first[3], first[4]);
        assert_eq!(groups.key(GroupId(first[3])).unwrap()[0], None);

        let b2 = batch(vec![column(&[0, 1], &["ETH", "BTC"])], 2);
        resolver.resolve(&mut groups, &[0], &b2, 2);
        assert_eq!(resolver.rows, vec![first[1], first[0]]);
        assert_eq!(groups.len(), 3);
    }

    #[test]
    fn several_tags_and_no_tags() {
        let mut groups = Groups::default();
        let mut resolver = GroupResolver::default();
        let b = batch(
            vec![
                column(&[0, 0, 1, 0], &["BTC", "ETH"]),
                column(&[0, 1, 0, 0], &["x", "y"]),
            ],
            4,
        );
        resolver.resolve(&mut groups, &[0, 1], &b, 4);
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            keys(&groups, &resolver),
            vec![
                vec![s("BTC"), s("x")],
                vec![s("BTC"), s("y")],
                vec![s("ETH"), s("x")],
                vec![s("BTC"), s("x")],
            ]
        );
        // Group order follows the tag order of group_by, not of the schema.
        resolver.resolve(&mut groups, &[1, 0], &b, 1);
        assert_eq!(keys(&groups, &resolver), vec![vec![s("x"), s("BTC")]]);

        let mut groups = Groups::default();
        resolver.resolve(&mut groups, &[], &b, 4);
        assert_eq!(resolver.rows, vec![0; 4]);
        // Missing tag columns read as null.
        resolver.resolve(&mut groups, &[5], &b, 2);
        assert_eq!(keys(&groups, &resolver), vec![vec![None], vec![None]]);
    }
}
