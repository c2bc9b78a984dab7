//! The running attributes processor: one pass over the map entries per batch.

use std::sync::Arc;

use arrow::array::{Array, ArrayBuilder, ArrayRef, MapArray, RecordBatch, StringBuilder};
use arrow::datatypes::DataType;
use phoenix_model::pipeline::AttributeAction;
use phoenix_model::schema::col;
use xxhash_rust::xxh3::xxh3_64;

use super::metrics::AttributesMetrics;
use super::rules::{Fate, Rules, UNCHANGED};
use crate::columns::{build_map, map_view, replace, string_map, strings, MapView};
use crate::processor::Processor;
use crate::series::{series_ids, services};
use crate::{Error, Result};

/// Edits datapoint attributes and the resource by compiled rules, then recomputes
/// `series_id` (and `service` when the resource changed).
pub struct Attributes {
    actions: Vec<AttributeAction>,
    resource_actions: Vec<AttributeAction>,
    attrs: Rules,
    resource: Option<Rules>,
    metrics: AttributesMetrics,
    /// Scratch, reused across batches: fate index per attribute entry.
    attr_fates: Vec<u32>,
    /// Scratch, reused across batches: fate index per resource entry.
    res_fates: Vec<u32>,
}

/// An entry on its way out of a row.
#[derive(Clone, Copy)]
struct Item<'a> {
    /// In (or moved to) the resource.
    resource: bool,
    /// Moved from the datapoint attributes (attribute actions no longer apply to it).
    moved: bool,
    key: &'a str,
    value: Option<&'a str>,
    hash: bool,
    alive: bool,
}

impl<'a> Item<'a> {
    fn new(key: &'a str, value: Option<&'a str>, resource: bool) -> Self {
        Item {
            resource,
            moved: false,
            key,
            value,
            hash: false,
            alive: true,
        }
    }
}

impl Attributes {
    pub(crate) fn new(
        actions: Vec<AttributeAction>,
        resource_actions: Vec<AttributeAction>,
        metrics: AttributesMetrics,
    ) -> Self {
        Attributes {
            attrs: Rules::compile(&actions),
            resource: (!resource_actions.is_empty()).then(|| Rules::compile(&resource_actions)),
            actions,
            resource_actions,
            metrics,
            attr_fates: Vec::new(),
            res_fates: Vec::new(),
        }
    }

    /// Looks up every entry's fate into `out`; returns (anything changes, anything moves).
    fn classify(rules: &Rules, map: &MapView<'_>, rows: usize, out: &mut Vec<u32>) -> (bool, bool) {
        out.clear();
        let (mut changed, mut moves) = (false, false);
        for i in map.range(0).start..map.range(rows.saturating_sub(1)).end {
            let f = rules.lookup(map.key(i));
            out.push(f);
            let fate = rules.fate(f);
            changed |= !fate.is_unchanged();
            moves |= matches!(
                fate,
                Fate::Keep {
                    to_resource: true,
                    ..
                }
            );
        }
        (changed, moves)
    }

    fn res_fate(&self, j: usize) -> &Fate {
        match &self.resource {
            Some(rules) => rules.fate(self.res_fates[j]),
            None => &UNCHANGED,
        }
    }

    /// Collects one row's outgoing entries into `items`.
    ///
    /// Rows where no entry is renamed or moved take each entry's precomputed fate. Others
    /// replay the actions in order over the row, so an entry renamed or moved onto a key
    /// replaces what holds that key at that step, exactly as the actions read.
    fn row_items<'a>(
        &'a self,
        row: usize,
        attrs: &MapView<'a>,
        res: &MapView<'a>,
        with_resource: bool,
        items: &mut Vec<Item<'a>>,
    ) {
        items.clear();
        let (a0, r0) = (attrs.range(0).start, res.range(0).start);
        let complex = attrs
            .range(row)
            .any(|i| self.attrs.fate(self.attr_fates[i - a0]).moves_key())
            || (with_resource && res.range(row).any(|j| self.res_fate(j - r0).moves_key()));
        if !complex {
            if with_resource {
                for j in res.range(row) {
                    push_fated(items, self.res_fate(j - r0), res.key(j), res.value(j), true);
                }
            }
            for i in attrs.range(row) {
                let fate = self.attrs.fate(self.attr_fates[i - a0]);
                push_fated(items, fate, attrs.key(i), attrs.value(i), false);
            }
            return;
        }
        if with_resource {
            items.extend(
                res.range(row)
                    .map(|j| Item::new(res.key(j), res.value(j), true)),
            );
            apply_in_order(&self.resource_actions, items, true);
        }
        items.extend(
            attrs
                .range(row)
                .map(|i| Item::new(attrs.key(i), attrs.value(i), false)),
        );
        apply_in_order(&self.actions, items, false);
    }

    fn rebuild(
        &self,
        batch: &RecordBatch,
        attrs: MapView<'_>,
        res: MapView<'_>,
        with_resource: bool,
    ) -> Result<RecordBatch> {
        let rows = batch.num_rows();
        let mut a_out = MapOut::with_capacity(rows, attrs.keys.len());
        let mut r_out = MapOut::with_capacity(if with_resource { rows } else { 0 }, 0);
        let mut items: Vec<Item<'_>> = Vec::new();
        for row in 0..rows {
            self.row_items(row, &attrs, &res, with_resource, &mut items);
            for it in items.iter().filter(|it| it.alive) {
                if it.resource {
                    r_out.push(it);
                } else {
                    a_out.push(it);
                }
            }
            a_out.end_row();
            r_out.end_row();
        }

        let attrs_col = a_out.finish(attrs.map.data_type())?;
        let attrs_new = map_view(downcast_map(&attrs_col)?, col::ATTRIBUTES)?;
        let metric = strings(batch, col::METRIC)?;
        let mut columns: Vec<(&'static str, ArrayRef)> = Vec::with_capacity(4);
        if with_resource {
            let res_col = r_out.finish(res.map.data_type())?;
            let res_new = map_view(downcast_map(&res_col)?, col::RESOURCE)?;
            columns.push((
                col::SERIES_ID,
                Arc::new(series_ids(metric, &res_new, &attrs_new)),
            ));
            columns.push((col::SERVICE, Arc::new(services(&res_new, rows))));
            columns.push((col::RESOURCE, res_col.clone()));
        } else {
            columns.push((
                col::SERIES_ID,
                Arc::new(series_ids(metric, &res, &attrs_new)),
            ));
        }
        columns.push((col::ATTRIBUTES, attrs_col.clone()));
        replace(batch, &columns)
    }
}

fn downcast_map(a: &ArrayRef) -> Result<&MapArray> {
    a.as_any()
        .downcast_ref::<MapArray>()
        .ok_or(Error::Column("map"))
}

/// Pushes an entry whose precomputed fate neither renames nor moves it.
#[inline]
fn push_fated<'a>(
    items: &mut Vec<Item<'a>>,
    fate: &Fate,
    key: &'a str,
    value: Option<&'a str>,
    resource: bool,
) {
    if let Fate::Keep { hash, .. } = fate {
        items.push(Item {
            hash: *hash,
            ..Item::new(key, value, resource)
        });
    }
}

/// Applies `actions` in order to the live entries of one map of a row (`resource` selects
/// which); moved entries leave the attributes and replace resource entries of their key.
fn apply_in_order<'a>(actions: &'a [AttributeAction], items: &mut [Item<'a>], resource: bool) {
    let has = |list: &[String], key: &str| list.iter().any(|k| k == key);
    for action in actions {
        let mut scope = items
            .iter_mut()
            .filter(|it| it.alive && it.resource == resource && !it.moved);
        match action {
            AttributeAction::Drop(list) => scope
                .filter(|it| has(list, it.key))
                .for_each(|it| it.alive = false),
            AttributeAction::KeepOnly(list) => scope
                .filter(|it| !has(list, it.key))
                .for_each(|it| it.alive = false),
            AttributeAction::Hash(list) => scope
                .filter(|it| has(list, it.key))
                .for_each(|it| it.hash = true),
            AttributeAction::Rename(r) => {
                if !scope.any(|it| it.key == r.from) {
                    continue;
                }
                for it in items
                    .iter_mut()
                    .filter(|it| it.alive && it.resource == resource && !it.moved)
                {
                    if it.key == r.to {
                        it.alive = false;
                    } else if it.key == r.from {
                        it.key = &r.to;
                    }
                }
            }
            AttributeAction::MoveToResource(list) => {
                drop(scope);
                for m in 0..items.len() {
                    let it = items[m];
                    if !(it.alive && !it.resource && has(list, it.key)) {
                        continue;
                    }
                    for other in items
                        .iter_mut()
                        .filter(|o| o.alive && o.resource && o.key == it.key)
                    {
                        other.alive = false;
                    }
                    items[m].resource = true;
                    items[m].moved = true;
                }
            }
        }
    }
}

/// A map column under construction.
struct MapOut {
    keys: StringBuilder,
    values: StringBuilder,
    offsets: Vec<i32>,
    hex: [u8; 16],
}

impl MapOut {
    fn with_capacity(rows: usize, entries: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        MapOut {
            keys: StringBuilder::with_capacity(entries, entries * 8),
            values: StringBuilder::with_capacity(entries, entries * 8),
            offsets,
            hex: [0; 16],
        }
    }

    #[inline]
    fn push(&mut self, it: &Item<'_>) {
        self.keys.append_value(it.key);
        match it.value {
            Some(v) if it.hash => {
                let hex = hex16(xxh3_64(v.as_bytes()), &mut self.hex);
                self.values.append_value(hex);
            }
            other => self.values.append_option(other),
        }
    }

    #[inline]
    fn end_row(&mut self) {
        self.offsets.push(self.keys.len() as i32);
    }

    fn finish(mut self, like: &DataType) -> Result<ArrayRef> {
        build_map(
            like,
            Arc::new(self.keys.finish()),
            Arc::new(self.values.finish()),
            self.offsets,
        )
    }
}

/// The 16 lowercase hex digits of `h`.
#[inline]
pub(crate) fn hex16(h: u64, buf: &mut [u8; 16]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in buf.iter_mut().enumerate() {
        *b = DIGITS[((h >> (60 - 4 * i)) & 0xf) as usize];
    }
    std::str::from_utf8(buf).unwrap_or_default()
}

impl Processor for Attributes {
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(batch);
        }
        let attrs = string_map(&batch, col::ATTRIBUTES)?;
        let res = string_map(&batch, col::RESOURCE)?;
        let (attrs_changed, moves) =
            Self::classify(&self.attrs, &attrs, rows, &mut self.attr_fates);
        let res_changed = match &self.resource {
            Some(rules) => Self::classify(rules, &res, rows, &mut self.res_fates).0,
            None => false,
        };
        if !attrs_changed && !res_changed {
            return Ok(batch);
        }
        let out = self.rebuild(&batch, attrs, res, res_changed || moves)?;
        self.metrics.edited.increment(rows as u64);
        Ok(out)
    }
}
