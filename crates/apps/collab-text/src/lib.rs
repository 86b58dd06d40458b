//! `collab-text`: one shared text edited concurrently (an RGA: concurrent inserts at one position
//! both survive, in a deterministic order; positions count characters).
//!
//! The init hook (`__tabmesh_init`, run once by the creator) takes `{text}` (optional): the
//! document's first content.
//!
//! | method | arguments | returns | event |
//! |---|---|---|---|
//! | `insert` | `{pos, text}` | `null` | `Inserted {pos, text}` |
//! | `append` | `{text}` | `null` | `Inserted {pos, text}` |
//! | `delete` | `{pos, len}` | `null` | `Deleted {pos, len}` |
//! | `read` | | the whole text | |
//! | `length` | | its length in characters | |

use tabmesh_sdk::prelude::*;

/// The document.
#[app::state]
#[derive(Debug)]
pub struct CollabText {
    doc: Text,
}

/// What editors tell each other's clients.
#[app::event]
#[derive(Debug)]
pub enum TextEvent {
    /// `text` went in at character `pos`.
    Inserted {
        /// Position in characters.
        pos: u32,
        /// The text.
        text: String,
    },
    /// `len` characters went away from `pos`.
    Deleted {
        /// Position in characters.
        pos: u32,
        /// Characters deleted.
        len: u32,
    },
}

#[app::logic]
impl CollabText {
    /// Starts the document with `text`, if given.
    #[app::init]
    pub fn init(&mut self, text: Option<String>) -> Result<()> {
        match text {
            Some(text) => self.doc.push(&text),
            None => Ok(()),
        }
    }

    /// Inserts `text` at character `pos` (≤ the length).
    pub fn insert(&mut self, pos: u32, text: String) -> Result<()> {
        self.doc.insert(pos, &text)?;
        emit!(TextEvent::Inserted { pos, text })
    }

    /// Appends `text`.
    pub fn append(&mut self, text: String) -> Result<()> {
        let pos = u32::try_from(self.doc.len()?).map_err(|_| Error::app("text too long"))?;
        self.doc.push(&text)?;
        emit!(TextEvent::Inserted { pos, text })
    }

    /// Deletes `len` characters from `pos`.
    pub fn delete(&mut self, pos: u32, len: u32) -> Result<()> {
        self.doc.delete(pos, len)?;
        emit!(TextEvent::Deleted { pos, len })
    }

    /// The whole text.
    pub fn read(&self) -> Result<String> {
        self.doc.read()
    }

    /// The text's length in characters.
    pub fn length(&self) -> Result<u64> {
        self.doc.len()
    }
}
