//! Small private files (the pending authorization, the export index): written through the
//! token store's writer, so they get the same care (a random temporary name created
//! exclusively, flushed, renamed, readable only by their owner).

/// Writes `bytes` to `path` atomically, mode 0600 on Unix, creating the directory (0700).
pub(crate) use igdisplay::auth::write_private;
