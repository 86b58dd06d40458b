//! What the driver needs from its host: the wall clock and OS entropy.

/// Milliseconds since the Unix epoch, by the wall clock (`Date.now()` in a JS host).
pub fn now_ms() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// 32 bytes of OS entropy (`crypto.getRandomValues` in a JS host).
pub fn entropy() -> [u8; 32] {
    let mut b = [0u8; 32];
    // No entropy source means no safe keys: there is nothing sensible to continue with.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("the host has no entropy source");
    b
}
