//! Blob references in app state: the one text form of a [`BlobId`] that apps store
//! (`tabmesh-blob:` + 64 lowercase hex digits, what the SDK's `BlobRef` writes), and
//! [`find_refs`], the scanner that finds them in any bytes (the driver's blob garbage collector
//! asks which blobs the state still names).

use std::collections::BTreeSet;

use crate::BlobId;

/// What every blob reference starts with. The SDK's `BLOB_REF_PREFIX` is the same string.
pub const REF_PREFIX: &str = "tabmesh-blob:";

/// Length of a blob reference's text: the prefix and 64 hex digits (77 bytes).
pub const REF_TEXT_LEN: usize = REF_PREFIX.len() + 64;

/// Most distinct blob ids [`find_refs`] collects into one set (64 Ki ids, 2 MiB of ids): a scan
/// of hostile or huge state never grows the set past it. A set this full may be incomplete (see
/// [`find_refs`]'s answer): a garbage collector must not collect anything then.
pub const MAX_FOUND_REFS: usize = 1 << 16;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The text of a reference to `id`: [`REF_PREFIX`] and the id in 64 lowercase hex digits.
pub fn ref_text(id: &BlobId) -> String {
    let mut s = String::with_capacity(REF_TEXT_LEN);
    s.push_str(REF_PREFIX);
    for b in id.0 {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// The id a reference's text names: exactly [`REF_TEXT_LEN`] bytes, [`REF_PREFIX`] then 64
/// lowercase hex digits (uppercase digits are not the reference's text form: `None`).
pub fn parse_ref(text: &[u8]) -> Option<BlobId> {
    if text.len() != REF_TEXT_LEN {
        return None;
    }
    let hex = text.strip_prefix(REF_PREFIX.as_bytes())?;
    let mut id = [0u8; 32];
    for (out, pair) in id.iter_mut().zip(hex.chunks_exact(2)) {
        *out = (lower_hex(pair[0])? << 4) | lower_hex(pair[1])?;
    }
    Some(BlobId(id))
}

fn lower_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Adds to `out` every blob id whose reference text occurs in `bytes`, anywhere (a substring
/// search: a reference inside a JSON value, a map key or an encoded entity counts). Returns
/// `false` when an id was left out because `out` already held [`MAX_FOUND_REFS`] ids (the set is
/// then incomplete), `true` otherwise. Linear in `bytes.len()`; allocates only the set's entries.
pub fn find_refs(bytes: &[u8], out: &mut BTreeSet<BlobId>) -> bool {
    let prefix = REF_PREFIX.as_bytes();
    let mut complete = true;
    let mut at = 0;
    while let Some(rest) = bytes.get(at..) {
        if rest.len() < REF_TEXT_LEN {
            break;
        }
        // The prefix's first byte does not occur in it again, so a mismatch skips one byte and a
        // match skips the whole reference without missing an overlapping one.
        let Some(start) = rest.iter().position(|b| *b == prefix[0]) else {
            break;
        };
        let candidate = rest.get(start..start + REF_TEXT_LEN);
        match candidate.and_then(parse_ref) {
            Some(id) => {
                if out.len() < MAX_FOUND_REFS || out.contains(&id) {
                    out.insert(id);
                } else {
                    complete = false;
                }
                at += start + REF_TEXT_LEN;
            }
            None => at += start + 1,
        }
    }
    complete
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk_bytes;

    fn id(n: u8) -> BlobId {
        BlobId([n; 32])
    }

    #[tabmesh_testkit::test]
    fn the_text_form_round_trips_and_is_exactly_one_spelling() {
        let (_, manifest) = chunk_bytes(b"hello").expect("a small blob");
        let text = ref_text(&manifest.id);
        assert_eq!(text.len(), REF_TEXT_LEN);
        assert_eq!(REF_TEXT_LEN, 77);
        assert!(text.starts_with("tabmesh-blob:"));
        assert_eq!(&text[13..], manifest.id.to_string());
        assert_eq!(parse_ref(text.as_bytes()), Some(manifest.id));
        // Uppercase hex, a missing or extra byte, another prefix: not a reference.
        let upper = format!("{REF_PREFIX}{}", manifest.id.to_string().to_uppercase());
        assert_eq!(parse_ref(upper.as_bytes()), None);
        assert_eq!(parse_ref(&text.as_bytes()[..76]), None);
        assert_eq!(parse_ref(format!("{text}0").as_bytes()), None);
        assert_eq!(parse_ref(text.replace("blob", "blub").as_bytes()), None);
    }

    #[tabmesh_testkit::test]
    fn find_refs_finds_every_reference_anywhere_in_the_bytes() {
        let (a, b, c) = (ref_text(&id(1)), ref_text(&id(2)), ref_text(&id(0xab)));
        // In JSON, back to back, after a false start, at the very end; a truncated one and an
        // uppercase one are not references.
        let bytes = format!(
            r#"{{"file":"{a}","n":1}}{b}{b}tabmesh-blob:tabmesh-blob:zz{}x{}{c}"#,
            &a[..70],
            ref_text(&id(0xcd))
                .to_uppercase()
                .replace("TABMESH-BLOB", "tabmesh-blob"),
        );
        let mut found = BTreeSet::new();
        assert!(find_refs(bytes.as_bytes(), &mut found));
        assert_eq!(found, BTreeSet::from([id(1), id(2), id(0xab)]));
        // Binary surroundings, and bytes shorter than a reference.
        let mut raw = vec![0xff, 0, b't'];
        raw.extend_from_slice(ref_text(&id(4)).as_bytes());
        raw.push(0);
        assert!(find_refs(&raw, &mut found));
        assert!(found.contains(&id(4)));
        assert!(find_refs(b"tabmesh-blob:", &mut found));
        assert!(find_refs(b"", &mut found));
        assert_eq!(found.len(), 4);
    }

    #[tabmesh_testkit::test]
    fn find_refs_stops_growing_the_set_at_its_bound_and_says_so() {
        let mut full: BTreeSet<BlobId> = (0..MAX_FOUND_REFS as u32)
            .map(|i| {
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&i.to_le_bytes());
                BlobId(b)
            })
            .collect();
        let known = *full.iter().next().expect("not empty");
        // An id already in the set is fine; a new one is left out and the scan says so.
        assert!(find_refs(ref_text(&known).as_bytes(), &mut full));
        assert!(!find_refs(ref_text(&id(0xee)).as_bytes(), &mut full));
        assert_eq!(full.len(), MAX_FOUND_REFS);
        assert!(!full.contains(&id(0xee)));
    }
}
