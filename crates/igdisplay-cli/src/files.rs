//! Small private files (the pending authorization, the export index): written through the
//! token store's writer, so they get the same care (a random temporary name created
//! exclusively, flushed, renamed, readable only by their owner).

/// Writes `bytes` to `path` atomically, mode 0600 on Unix, creating the directory (0700).
pub(crate) use igdisplay::auth::write_private;

/// Makes igdisplay's own configuration directory (the default token file's) readable only by
/// its owner, when an older version or another tool left it open (`0755`): the token file in
/// it is `0600` either way, but a listing of the directory shows who is logged in. A directory
/// named with `--token-file` belongs to the user and is left as it is.
pub(crate) fn tighten_own_dir(dir: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::symlink_metadata(dir)
            && meta.is_dir()
            && meta.permissions().mode() & 0o077 != 0
            && let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        {
            eprintln!(
                "warning: {} is readable by others and could not be made private: {e}",
                dir.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Refuses a secret file (`what`: "key file") that its group or others may read, with the
/// `chmod` that fixes it: the key opens every token of the store.
pub(crate) fn refuse_shared(path: &std::path::Path, what: &str) -> Result<(), crate::fail::Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            return Err(crate::fail::Failure::usage(
                format!(
                    "the {what} {} can be read by other users (mode {:o}); it holds the keys to every token",
                    path.display(),
                    meta.permissions().mode() & 0o777
                ),
                format!("run `chmod 600 {}`, then try again", path.display()),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
    Ok(())
}
