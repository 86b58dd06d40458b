//! The call's environment: ids, time, randomness and logs. Natively each answers
//! [`Error::NoHost`](crate::Error::NoHost).

use crate::{sys, Result};

/// Appends a UTF-8 line to the call's logs (see also [`log!`](crate::log)).
pub fn log(line: &str) -> Result<()> {
    sys::call_log(line)
}

/// The 32-byte id of the context the call runs in.
pub fn context_id() -> Result<[u8; 32]> {
    sys::call_context_id()
}

/// The 32-byte id of the member executing the call (on a handler call: the receiving member).
pub fn executor_id() -> Result<[u8; 32]> {
    sys::call_executor_id()
}

/// The host's time in milliseconds since the Unix epoch, fixed for the call. Do not let it decide
/// what state means: other members apply the same delta at other times.
pub fn time_now_ms() -> Result<u64> {
    sys::call_time_now()
}

/// Fills `out` from the host's deterministic generator.
pub fn random_bytes(out: &mut [u8]) -> Result<()> {
    sys::call_random_bytes(out)
}
