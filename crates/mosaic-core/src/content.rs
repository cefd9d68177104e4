//! Human-readable content (`human_readable_content.md`): the text of a
//! printable record and the content segments its tags insert into it.
//!
//! A printable kind carries UTF-8 text (records check this on parsing).
//! Anything with machine-readable meaning (a mention, a quote, a link, an
//! image, a video) is not in the text but in a content segment tag
//! (0x20-0x26) that says what to insert and at which *character* offset.
//! [`segments`] splits a record's text at those offsets; [`render_plain`]
//! turns the result into plain text for a terminal.
//!
//! Decisions where the spec is silent:
//!
//! - **Characters** are Unicode scalar values (Rust `char`s), not bytes,
//!   UTF-16 units or grapheme clusters. Offset `n` inserts before the `n`th
//!   character; an offset equal to the number of characters appends.
//! - **Offsets beyond the text** are clamped to its end: the segment is
//!   appended (after those at the end, in offset order) rather than the
//!   whole content refused, since the record itself is valid.
//! - **Several segments at one offset** keep the order of their tags.
//! - A content segment tag whose value is malformed makes the content
//!   unreadable ([`ContentError::MalformedSegment`]); other tag types are
//!   ignored.

use std::borrow::Cow;

use crate::keys::PublicKey;
use crate::kind::Kind;
use crate::record::{Record, RecordError};
use crate::reference::Reference;
use crate::tag::{TagError, TagValue};

/// Why a record's content cannot be split into segments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The record's kind is not printable: its payload is not text.
    #[error("kind {:#018x} is not printable", kind.as_u64())]
    NotPrintable {
        /// The record's kind.
        kind: Kind,
    },
    /// The payload could not be decompressed or is not UTF-8.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A content segment tag's value is malformed; the content cannot be
    /// shown as its author meant.
    #[error("content segment tag {index} is malformed: {source}")]
    MalformedSegment {
        /// Index of the tag in the record's tag set.
        index: usize,
        /// Why.
        source: TagError,
    },
}

/// A piece of a record's content, in display order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Segment<'a> {
    /// A run of the payload text (never empty).
    Text(Cow<'a, str>),
    /// 0x20: a mention of a user (their master key).
    UserMention(PublicKey),
    /// 0x21: a mention of a server.
    ServerMention(PublicKey),
    /// 0x22: a quoted record.
    Quote {
        /// The quoted record's kind.
        kind: Kind,
        /// Which record.
        reference: Reference,
    },
    /// 0x24: a link to a web page.
    Url(&'a str),
    /// 0x25: an image, by URL.
    Image(&'a str),
    /// 0x26: a video, by URL.
    Video(&'a str),
}

/// The byte index of character `offset` in `text`: `Some(text.len())` for
/// the offset just past the last character, `None` beyond that.
pub fn char_offset_to_byte(text: &str, offset: u32) -> Option<usize> {
    let offset = usize::try_from(offset).ok()?;
    if offset == 0 {
        return Some(0);
    }
    match text.char_indices().nth(offset) {
        Some((at, _)) => Some(at),
        None if text.chars().count() == offset => Some(text.len()),
        None => None,
    }
}

/// Splits a printable record's text into text runs and the segments its
/// content segment tags insert, in display order.
pub fn segments(record: &Record) -> Result<Vec<Segment<'_>>, ContentError> {
    if !record.kind().is_printable() {
        return Err(ContentError::NotPrintable {
            kind: record.kind(),
        });
    }
    let text = record.payload_text()?;

    // The inserted segments with their character offsets, in tag order.
    let mut inserts: Vec<(u32, Segment<'_>)> = Vec::new();
    for (index, tag) in record.tags().iter().enumerate() {
        if !tag.tag_type().is_content_segment() {
            continue;
        }
        let value = tag
            .parse()
            .map_err(|source| ContentError::MalformedSegment { index, source })?;
        inserts.push(match value {
            TagValue::UserMention { offset, key } => (offset, Segment::UserMention(key)),
            TagValue::ServerMention { offset, key } => (offset, Segment::ServerMention(key)),
            TagValue::Quote {
                offset,
                kind,
                reference,
            } => (offset, Segment::Quote { kind, reference }),
            TagValue::Url { offset, url } => (offset, Segment::Url(url)),
            TagValue::Image { offset, url } => (offset, Segment::Image(url)),
            TagValue::Video { offset, url } => (offset, Segment::Video(url)),
            _ => continue,
        });
    }
    // A stable sort keeps tag order among segments at one offset.
    inserts.sort_by_key(|(offset, _)| *offset);

    // One pass over the text maps every offset to a byte position: the
    // boundaries are the byte index of each character, then the end.
    let mut boundaries = text
        .char_indices()
        .map(|(at, _)| at)
        .chain(std::iter::once(text.len()));
    let mut boundary = boundaries.next().unwrap_or(text.len());
    let mut chars_passed: u32 = 0;

    let mut out = Vec::with_capacity(2 * inserts.len() + 1);
    let mut from = 0;
    for (offset, segment) in inserts {
        while chars_passed < offset {
            match boundaries.next() {
                Some(next) => {
                    boundary = next;
                    chars_passed += 1;
                }
                // Beyond the text: clamp to its end.
                None => break,
            }
        }
        if boundary > from {
            out.push(Segment::Text(slice(&text, from, boundary)));
            from = boundary;
        }
        out.push(segment);
    }
    if from < text.len() {
        out.push(Segment::Text(slice(&text, from, text.len())));
    }
    Ok(out)
}

/// `text[from..to]`, borrowed when the text is borrowed from the record.
fn slice<'a>(text: &Cow<'a, str>, from: usize, to: usize) -> Cow<'a, str> {
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.get(from..to).unwrap_or_default()),
        Cow::Owned(s) => Cow::Owned(s.get(from..to).unwrap_or_default().to_owned()),
    }
}

/// The record's content as plain text: user mentions as `@mopub0...`, server
/// mentions as `@mosrv0...`, quotes as `moref0...`, and URLs, images and
/// videos as their URLs.
pub fn render_plain(record: &Record) -> Result<String, ContentError> {
    render_plain_with(record, |_| None)
}

/// Like [`render_plain`], but user mentions show as `@name` wherever
/// `name_of` knows a name for the key.
pub fn render_plain_with(
    record: &Record,
    mut name_of: impl FnMut(&PublicKey) -> Option<String>,
) -> Result<String, ContentError> {
    let mut out = String::new();
    for segment in segments(record)? {
        match segment {
            Segment::Text(text) => out.push_str(&text),
            Segment::UserMention(key) => {
                out.push('@');
                match name_of(&key) {
                    Some(name) => out.push_str(&name),
                    None => out.push_str(&key.to_printable()),
                }
            }
            Segment::ServerMention(key) => {
                out.push('@');
                out.push_str(&key.to_server_printable());
            }
            Segment::Quote { reference, .. } => out.push_str(&reference.to_printable()),
            Segment::Url(url) | Segment::Image(url) | Segment::Video(url) => out.push_str(url),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use crate::record::{OwnedRecord, RecordBuilder};
    use crate::reference::{Id, Nonce};
    use crate::tag::{OwnedTag, TagType};
    use crate::timestamp::Timestamp;

    fn note(text: &str, tags: &[OwnedTag], zstd: bool) -> OwnedRecord {
        let mut b = RecordBuilder::new(Kind::MICROBLOG_ROOT, Timestamp::from_nanos(1).unwrap())
            .nonce(Nonce::from_key(b"n"))
            .payload(text.as_bytes())
            .zstd(zstd);
        for t in tags {
            b = b.tag(t);
        }
        b.build(&SecretKey::from_bytes(&[1; 32])).unwrap()
    }

    fn user() -> PublicKey {
        SecretKey::from_bytes(&[2; 32]).public()
    }

    #[test]
    fn char_offsets() {
        let text = "héllo ✨!";
        assert_eq!(char_offset_to_byte(text, 0), Some(0));
        assert_eq!(char_offset_to_byte(text, 1), Some(1));
        assert_eq!(char_offset_to_byte(text, 2), Some(3));
        assert_eq!(char_offset_to_byte(text, 6), Some(7));
        assert_eq!(char_offset_to_byte(text, 7), Some(10));
        assert_eq!(char_offset_to_byte(text, 8), Some(text.len()));
        assert_eq!(char_offset_to_byte(text, 9), None);
        assert_eq!(char_offset_to_byte("", 0), Some(0));
        assert_eq!(char_offset_to_byte("", 1), None);
        assert_eq!(char_offset_to_byte("abc", u32::MAX), None);
    }

    #[test]
    fn splits_at_character_offsets() {
        let quoted = Reference::Id(Id::from_bytes(&[0x11; 48]).unwrap());
        let tags = [
            OwnedTag::url(13, "https://x.example/").unwrap(),
            OwnedTag::user_mention(3, &user()),
            OwnedTag::quote(13, &quoted, Kind::MICROBLOG_ROOT),
            OwnedTag::notify_public_key(&user()),
        ];
        // "Hé " is 3 characters but 4 bytes; the text is 13 characters.
        for zstd in [false, true] {
            let record = note("Hé , see this", &tags, zstd);
            let got = segments(&record).unwrap();
            assert_eq!(
                got,
                vec![
                    Segment::Text("Hé ".into()),
                    Segment::UserMention(user()),
                    Segment::Text(", see this".into()),
                    Segment::Url("https://x.example/"),
                    Segment::Quote {
                        kind: Kind::MICROBLOG_ROOT,
                        reference: quoted
                    },
                ]
            );
            assert_eq!(matches!(got[0], Segment::Text(Cow::Borrowed(_))), !zstd);
        }
    }

    #[test]
    fn offsets_beyond_text_are_appended() {
        let tags = [
            OwnedTag::image(1000, "https://i.example/a.png").unwrap(),
            OwnedTag::video(0, "https://v.example/b.mp4").unwrap(),
            OwnedTag::server_mention(2, &user()),
        ];
        let record = note("ab", &tags, false);
        assert_eq!(
            segments(&record).unwrap(),
            vec![
                Segment::Video("https://v.example/b.mp4"),
                Segment::Text("ab".into()),
                Segment::ServerMention(user()),
                Segment::Image("https://i.example/a.png"),
            ]
        );
        let empty = note("", &tags[..1], false);
        assert_eq!(
            segments(&empty).unwrap(),
            vec![Segment::Image("https://i.example/a.png")]
        );
    }

    #[test]
    fn renders_plain_text() {
        let quoted = Reference::Id(Id::from_bytes(&[0x11; 48]).unwrap());
        let tags = [
            OwnedTag::user_mention(3, &user()),
            OwnedTag::url(9, "https://x.example/").unwrap(),
            OwnedTag::quote(9, &quoted, Kind::MICROBLOG_ROOT),
            OwnedTag::server_mention(0, &user()),
        ];
        let record = note("Hi , see ", &tags, false);
        assert_eq!(
            render_plain(&record).unwrap(),
            format!(
                "@{}Hi @{}, see https://x.example/{}",
                user().to_server_printable(),
                user().to_printable(),
                quoted.to_printable()
            )
        );
        let named = render_plain_with(&record, |k| (*k == user()).then(|| "bob".to_string()));
        assert_eq!(
            named.unwrap(),
            format!(
                "@{}Hi @bob, see https://x.example/{}",
                user().to_server_printable(),
                quoted.to_printable()
            )
        );
    }

    #[test]
    fn errors() {
        let bad = OwnedTag::new(TagType::USER_MENTION, &[0; 7]).unwrap();
        let record = note("x", &[bad], false);
        assert!(matches!(
            segments(&record),
            Err(ContentError::MalformedSegment { index: 0, .. })
        ));
        let not_utf8 = OwnedTag::new(TagType::URL, &[0, 0, 0, 0, 0xff]).unwrap();
        let record = note(
            "x",
            &[OwnedTag::notify_public_key(&user()), not_utf8],
            false,
        );
        assert!(matches!(
            render_plain(&record),
            Err(ContentError::MalformedSegment { index: 1, .. })
        ));
        let binary = RecordBuilder::new(Kind::PROFILE, Timestamp::from_nanos(1).unwrap())
            .nonce(Nonce::from_key(b"p"))
            .payload(&[0xa0])
            .build(&SecretKey::from_bytes(&[1; 32]))
            .unwrap();
        assert!(matches!(
            segments(&binary),
            Err(ContentError::NotPrintable { .. })
        ));
    }
}
