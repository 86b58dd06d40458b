//! What the macros' generated code calls. Not a stable API.

pub use serde;
pub use serde_json;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{sys, Error};

/// A method's answer: the return value's bytes, or the bytes to `fail` with.
pub type Outcome = Result<Vec<u8>, Vec<u8>>;

/// Runs one exported method: reads the input, runs `f`, then sets the return value or fails.
pub fn dispatch(f: impl FnOnce(&[u8]) -> Outcome) {
    let outcome = match sys::call_input() {
        Ok(input) => f(&input),
        Err(e) => Err(error_bytes(&e)),
    };
    // Natively (no host) both answers are `NoHost`, and there is no one to tell.
    let _ = match outcome {
        Ok(value) => sys::call_return_value(&value),
        Err(error) => sys::call_fail(&error),
    };
}

/// `e` as JSON (an error that cannot be encoded becomes an [`Error::Encode`]).
fn error_bytes<E: Serialize + ?Sized>(e: &E) -> Vec<u8> {
    serde_json::to_vec(e).unwrap_or_else(|err| {
        let fallback = Error::Encode {
            message: err.to_string(),
        };
        serde_json::to_vec(&fallback).unwrap_or_default()
    })
}

/// Decodes a method's arguments from its input (empty or `null`: `{}`).
pub fn args<A: DeserializeOwned>(input: &[u8]) -> Result<A, Vec<u8>> {
    let trimmed = input.trim_ascii();
    let input = if trimmed.is_empty() || trimmed == b"null" {
        &b"{}"[..]
    } else {
        input
    };
    serde_json::from_slice(input).map_err(|e| {
        error_bytes(&Error::BadInput {
            message: e.to_string(),
        })
    })
}

/// A plain return value.
pub fn ok<T: Serialize + ?Sized>(value: &T) -> Outcome {
    serde_json::to_vec(value).map_err(|e| {
        error_bytes(&Error::Encode {
            message: e.to_string(),
        })
    })
}

/// A `Result` return value: `Ok` answers, `Err` fails.
pub fn result<T: Serialize, E: Serialize>(value: &Result<T, E>) -> Outcome {
    match value {
        Ok(v) => ok(v),
        Err(e) => Err(error_bytes(e)),
    }
}

/// The serializer event data is written with.
pub type DataSerializer<'a> = serde_json::Serializer<&'a mut Vec<u8>>;

/// Event data written by `f`.
pub fn event_data(
    f: impl FnOnce(&mut DataSerializer<'_>) -> Result<(), serde_json::Error>,
) -> crate::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    f(&mut ser).map_err(|e| Error::Encode {
        message: e.to_string(),
    })?;
    Ok(out)
}
