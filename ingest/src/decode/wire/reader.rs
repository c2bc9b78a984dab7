//! Protobuf wire-format primitives over a borrowed buffer: varints, keys, field values, and
//! iterators over the fields of one message. Every read is bounds-checked; malformed input is a
//! [`WireError`], never a panic.

use super::WireError;

/// Wire type of a field key.
pub(crate) mod wt {
    /// Varint.
    pub const VARINT: u8 = 0;
    /// 64-bit little-endian.
    pub const I64: u8 = 1;
    /// Length-delimited.
    pub const LEN: u8 = 2;
    /// Start of a (deprecated) group.
    pub const SGROUP: u8 = 3;
    /// End of a group.
    pub const EGROUP: u8 = 4;
    /// 32-bit little-endian.
    pub const I32: u8 = 5;
}

/// One field's value; groups are skipped (their content is never needed).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    /// A varint.
    Varint(u64),
    /// A 64-bit value.
    I64(u64),
    /// A length-delimited payload.
    Len(&'a [u8]),
    /// A 32-bit value (no OTLP metrics field has one).
    I32,
    /// A skipped group.
    Group,
}

/// A cursor over `buf`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    #[inline]
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Whether everything was read.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes left to read.
    #[cfg(test)]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// A varint of at most 10 bytes whose 10th byte is 0 or 1 (prost's rule).
    #[inline(always)]
    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        // Most varints (keys, lengths below 128) are one byte.
        if let Some((&b, rest)) = self.buf.split_first() {
            if b < 0x80 {
                self.buf = rest;
                return Ok(u64::from(b));
            }
        }
        self.varint_long()
    }

    fn varint_long(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some((&b, rest)) = self.buf.split_first() else {
                return Err(WireError::Truncated);
            };
            self.buf = rest;
            if i == 9 && b >= 2 {
                return Err(WireError::InvalidVarint);
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError::InvalidVarint)
    }

    /// `n` bytes.
    #[inline(always)]
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A little-endian 64-bit value.
    #[inline(always)]
    pub(crate) fn fixed64(&mut self) -> Result<u64, WireError> {
        let b = self.bytes(8)?;
        let a: [u8; 8] = b.try_into().map_err(|_| WireError::Truncated)?;
        Ok(u64::from_le_bytes(a))
    }

    /// A length-delimited payload.
    #[inline(always)]
    pub(crate) fn len_delimited(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| WireError::Truncated)?;
        self.bytes(n)
    }

    /// A field key: (field number ≥ 1, wire type ≤ 5).
    #[inline(always)]
    pub(crate) fn key(&mut self) -> Result<(u32, u8), WireError> {
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| WireError::InvalidKey)?;
        let wire = (key & 7) as u8;
        if wire > wt::I32 {
            return Err(WireError::InvalidWireType);
        }
        let tag = key >> 3;
        if tag == 0 {
            return Err(WireError::InvalidKey);
        }
        Ok((tag, wire))
    }

    /// Skips an unknown field, as prost does: groups are skipped to their matching end,
    /// each level of nesting taking one unit of `depth` (the recursion budget left).
    pub(crate) fn skip(&mut self, tag: u32, wire: u8, depth: u32) -> Result<(), WireError> {
        if depth == 0 {
            return Err(WireError::TooDeep);
        }
        match wire {
            wt::VARINT => self.varint().map(|_| ()),
            wt::I64 => self.bytes(8).map(|_| ()),
            wt::LEN => self.len_delimited().map(|_| ()),
            wt::I32 => self.bytes(4).map(|_| ()),
            wt::SGROUP => loop {
                let (inner, inner_wire) = self.key()?;
                if inner_wire == wt::EGROUP {
                    if inner != tag {
                        return Err(WireError::UnexpectedEndGroup);
                    }
                    return Ok(());
                }
                self.skip(inner, inner_wire, depth - 1)?;
            },
            _ => Err(WireError::UnexpectedEndGroup),
        }
    }

    /// The next field: number and value (groups skipped without a depth limit: this is for
    /// input already checked).
    #[inline(always)]
    pub(crate) fn field(&mut self) -> Result<(u32, Value<'a>), WireError> {
        let (tag, wire) = self.key()?;
        let value = match wire {
            wt::VARINT => Value::Varint(self.varint()?),
            wt::I64 => Value::I64(self.fixed64()?),
            wt::LEN => Value::Len(self.len_delimited()?),
            wt::I32 => {
                self.bytes(4)?;
                Value::I32
            }
            _ => self.group(tag, wire)?,
        };
        Ok((tag, value))
    }

    /// Skips a group (or fails on a stray end): rare, kept out of line.
    #[cold]
    #[inline(never)]
    fn group(&mut self, tag: u32, wire: u8) -> Result<Value<'a>, WireError> {
        self.skip(tag, wire, u32::MAX)?;
        Ok(Value::Group)
    }
}

/// The fields of one checked message, in order; stops at the end (or at malformed input,
/// which a checked message does not have).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a>(Reader<'a>);

impl<'a> Fields<'a> {
    /// Fields of the message `buf`.
    #[inline]
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self(Reader::new(buf))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u32, Value<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        match self.0.field() {
            Ok(f) => Some(f),
            Err(_) => {
                self.0 = Reader::new(&[]);
                None
            }
        }
    }
}

/// Payloads of the length-delimited field `num` of one message (a repeated message field).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Msgs<'a> {
    fields: Fields<'a>,
    num: u32,
}

impl<'a> Msgs<'a> {
    /// Occurrences of field `num` in the message `buf`.
    #[inline]
    pub(crate) fn new(buf: &'a [u8], num: u32) -> Self {
        Self {
            fields: Fields::new(buf),
            num,
        }
    }
}

impl<'a> Iterator for Msgs<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        for (tag, value) in self.fields.by_ref() {
            if let (true, Value::Len(b)) = (tag == self.num, value) {
                return Some(b);
            }
        }
        None
    }
}

/// Items of the repeated scalar field `num`, packed or not (both may mix): varints when
/// `VARINT`, else 64-bit values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Repeated<'a, const VARINT: bool> {
    fields: Fields<'a>,
    num: u32,
    packed: Reader<'a>,
}

impl<'a, const VARINT: bool> Repeated<'a, VARINT> {
    /// Occurrences of field `num` in the message `buf`.
    #[inline]
    pub(crate) fn new(buf: &'a [u8], num: u32) -> Self {
        Self {
            fields: Fields::new(buf),
            num,
            packed: Reader::new(&[]),
        }
    }
}

impl<const VARINT: bool> Iterator for Repeated<'_, VARINT> {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        loop {
            if !self.packed.is_empty() {
                let v = if VARINT {
                    self.packed.varint()
                } else {
                    self.packed.fixed64()
                };
                return v.ok();
            }
            let (tag, value) = self.fields.next()?;
            if tag != self.num {
                continue;
            }
            match value {
                Value::Len(b) => self.packed = Reader::new(b),
                Value::Varint(v) if VARINT => return Some(v),
                Value::I64(v) if !VARINT => return Some(v),
                _ => {}
            }
        }
    }
}

/// Key and string value of a `KeyValue` laid out as `{1: key, 2: {1: string}}` (the common
/// case), else `None`.
#[inline]
pub(crate) fn string_kv(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut r = Reader::new(body);
    if r.varint().ok()? != 0x0a {
        return None;
    }
    let key = r.len_delimited().ok()?;
    if r.varint().ok()? != 0x12 {
        return None;
    }
    let mut any = Reader::new(r.len_delimited().ok()?);
    if !r.is_empty() || any.varint().ok()? != 0x0a {
        return None;
    }
    let value = any.len_delimited().ok()?;
    any.is_empty().then_some((key, value))
}
