//! `BlobRef`'s one text form and its serde encoding; the blob calls natively.

use tabmesh_sdk::__private::serde_json;
use tabmesh_sdk::blob::{self, BLOB_REF_LEN};
use tabmesh_sdk::{BlobRef, Error, BLOB_REF_PREFIX};
use tabmesh_testkit::test;

fn id() -> [u8; 32] {
    let mut id = [0u8; 32];
    for (i, b) in id.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0xa5;
    }
    id
}

fn hex(id: &[u8; 32]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_blob_ref_has_one_text_form_of_77_bytes() {
    let r = BlobRef::from_id(id());
    let text = format!("tabmesh-blob:{}", hex(&id()));
    assert_eq!(BLOB_REF_PREFIX, "tabmesh-blob:");
    assert_eq!((BLOB_REF_LEN, text.len()), (77, 77));
    assert_eq!(r.as_text(), text);
    assert_eq!(r.to_text(), text);
    assert_eq!(r.to_string(), text);
    assert_eq!(AsRef::<[u8]>::as_ref(&r), text.as_bytes());
    assert_eq!(r.id(), id());
    assert_eq!(BlobRef::from(id()), r);
    assert_eq!(BlobRef::parse(text.as_bytes()), Some(r));
    assert_eq!(text.parse::<BlobRef>(), Ok(r));
    assert_eq!(format!("{r:?}"), format!("BlobRef({text})"));
    // Anything else is not a reference: uppercase digits, another length, another prefix.
    let upper = format!("tabmesh-blob:{}", hex(&id()).to_uppercase());
    assert_eq!(BlobRef::parse(upper.as_bytes()), None);
    assert_eq!(BlobRef::parse(&text.as_bytes()[..76]), None);
    assert_eq!(BlobRef::parse(format!("{text}a").as_bytes()), None);
    assert_eq!(BlobRef::parse(hex(&id()).as_bytes()), None);
    assert!("tabmesh-blob:xyz".parse::<BlobRef>().is_err());
}

#[test]
fn a_blob_ref_serializes_as_its_text_even_inside_a_struct() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Attachment {
        name: String,
        blob: BlobRef,
    }
    let a = Attachment {
        name: "a.txt".into(),
        blob: BlobRef::from_id(id()),
    };
    let json = serde_json::to_string(&a).expect("encodes");
    assert_eq!(
        json,
        format!(r#"{{"name":"a.txt","blob":"tabmesh-blob:{}"}}"#, hex(&id()))
    );
    assert_eq!(
        serde_json::from_str::<Attachment>(&json).expect("decodes"),
        a
    );
    assert_eq!(
        serde_json::to_string(&BlobRef::from_id(id())).expect("encodes"),
        format!(r#""{}""#, BlobRef::from_id(id()))
    );
    let bad = r#"{"name":"a","blob":"tabmesh-blob:00"}"#;
    assert!(serde_json::from_str::<Attachment>(bad).is_err());
}

#[test]
fn natively_the_blob_calls_are_no_host_errors() {
    assert_eq!(blob::create().map(|_| ()), Err(Error::NoHost));
    assert_eq!(
        blob::open(&BlobRef::from_id(id())).map(|_| ()),
        Err(Error::NoHost)
    );
}

#[test]
fn a_refused_blob_operation_encodes_as_a_blob_error() {
    let e = Error::Blob {
        reason: "not_found",
        message: "x".into(),
    };
    assert_eq!(
        serde_json::to_string(&e).expect("encodes"),
        r#"{"kind":"blob","reason":"not_found","message":"x"}"#
    );
}
