use tabmesh_testkit::test;

use tabmesh_auth::{AuthError, InviteLink, Keypair, INVITE_PREFIX};
use tabmesh_base::codec::Writer;
use tabmesh_base::CodecError;

use super::support::{link, resign, KEY_MATERIAL};

/// A link made from raw payload bytes.
fn link_of(bytes: &[u8]) -> String {
    use base64_like::encode;
    format!("{INVITE_PREFIX}{}", encode(bytes))
}

/// Base64url without padding, written out here so the tests do not depend on the crate's encoder.
mod base64_like {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }
}

#[test]
fn a_link_roundtrips() {
    let (_, link) = link(60);
    let text = link.to_link();
    assert!(text.starts_with(INVITE_PREFIX));
    assert!(text[INVITE_PREFIX.len()..]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    let parsed = InviteLink::parse(&text).unwrap();
    assert_eq!(parsed, link);
    parsed.invitation.verify().unwrap();
    assert_eq!(parsed.open_keys().unwrap(), KEY_MATERIAL);
    // The helper encoder agrees with the crate's.
    let mut w = Writer::new();
    link.invitation.encode(&mut w);
    w.raw(&link.secret);
    assert_eq!(link_of(&w.finish()), text);
}

#[test]
fn a_link_is_found_after_the_hash_of_a_url() {
    let (_, link) = link(61);
    let text = link.to_link();
    for url in [
        format!("https://host.example/app#{text}"),
        format!("https://host.example/app?x=1#join={text}&from=mail"),
        format!("  {text}\n"),
    ] {
        assert_eq!(InviteLink::parse(&url).unwrap(), link, "{url}");
    }
}

#[test]
fn a_wrong_prefix_is_bad_link() {
    let (_, link) = link(62);
    let text = link.to_link();
    let payload = &text[INVITE_PREFIX.len()..];
    for bad in [
        payload.to_owned(),
        format!("tabmesh-invitation:{payload}"),
        format!("https://host.example/app?{text}"),
        "https://host.example/app#nothing-here".to_owned(),
        String::new(),
    ] {
        assert!(
            matches!(InviteLink::parse(&bad), Err(AuthError::BadLink(_))),
            "{bad}"
        );
    }
}

#[test]
fn bad_base64_is_bad_link() {
    let (_, link) = link(63);
    let text = link.to_link();
    for bad in [
        format!("{text}!"),
        format!("{text}="),
        format!("{INVITE_PREFIX}a"),
        format!("{INVITE_PREFIX}ab+/"),
    ] {
        assert!(
            matches!(InviteLink::parse(&bad), Err(AuthError::BadLink(_))),
            "{bad}"
        );
    }
}

#[test]
fn a_truncated_or_padded_link_is_a_codec_error() {
    let (_, link) = link(64);
    let mut w = Writer::new();
    link.invitation.encode(&mut w);
    w.raw(&link.secret);
    let bytes = w.finish();
    for n in [0, 1, 40, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            matches!(
                InviteLink::parse(&link_of(&bytes[..n])),
                Err(AuthError::Codec(_))
            ),
            "{n} bytes"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        InviteLink::parse(&link_of(&longer)),
        Err(AuthError::Codec(CodecError::TrailingBytes(1)))
    );
    let mut version = bytes.clone();
    version[0] = 99;
    assert!(matches!(
        InviteLink::parse(&link_of(&version)),
        Err(AuthError::Codec(CodecError::UnknownVersion {
            found: 99,
            ..
        }))
    ));
}

#[test]
fn an_oversized_link_is_refused_before_decoding() {
    let text = format!("{INVITE_PREFIX}{}", "A".repeat(1 << 20));
    assert!(matches!(
        InviteLink::parse(&text),
        Err(AuthError::TooLarge {
            what: "invite link",
            ..
        })
    ));
}

#[test]
fn a_tampered_link_is_bad_signature() {
    let (_, link) = link(65);
    let mut tampered = link.clone();
    tampered.invitation.expires_ms = u64::MAX;
    assert_eq!(
        InviteLink::parse(&tampered.to_link()),
        Err(AuthError::BadSignature)
    );
    let mut tampered = link.clone();
    tampered.invitation.role = tabmesh_auth::Role::Admin;
    assert_eq!(
        InviteLink::parse(&tampered.to_link()),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_secret_that_does_not_match_is_bad_link() {
    let (_, link) = link(66);
    let mut wrong = link.clone();
    wrong.secret[31] ^= 1;
    assert!(matches!(
        InviteLink::parse(&wrong.to_link()),
        Err(AuthError::BadLink(_))
    ));
}

#[test]
fn a_resigned_invitation_with_an_invalid_invite_key_is_refused() {
    let (inviter, link) = link(67);
    let mut bad = link.clone();
    bad.invitation.invite_key = super::support::NOT_A_POINT;
    resign(&mut bad.invitation, &inviter);
    assert_eq!(
        InviteLink::parse(&bad.to_link()),
        Err(AuthError::BadPublicKey)
    );
    // Signed by someone else than the named inviter.
    let mut other = link.clone();
    resign(&mut other.invitation, &Keypair::from_secret([3; 32]));
    assert_eq!(
        InviteLink::parse(&other.to_link()),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn debug_redacts_the_secret() {
    let (_, mut link) = link(68);
    link.secret = [0xcd; 32];
    let shown = format!("{link:?}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(!shown.contains("205, 205"), "{shown}");
}
