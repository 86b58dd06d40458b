//! Events: a kind and JSON data, optionally naming a handler method.

use crate::{sys, Result};

/// An event an app emits; implemented by `#[app::event]`.
pub trait Event {
    /// The event's kind: the variant's (or struct's) name.
    fn kind(&self) -> &'static str;
    /// The event's data: its fields as a JSON object (a one-field tuple variant: that value; no
    /// fields: `{}`). A handler receives exactly these bytes as its input.
    fn data(&self) -> Result<Vec<u8>>;
}

/// Emits `event`, naming `handler` (an exported method of this app) if any; what [`emit!`]
/// expands to. The host checks the handler exists.
///
/// [`emit!`]: crate::emit
pub fn emit_event<E: Event + ?Sized>(event: &E, handler: Option<&str>) -> Result<()> {
    let data = event.data()?;
    sys::call_emit(event.kind(), &data, handler)
}
