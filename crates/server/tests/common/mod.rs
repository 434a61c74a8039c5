//! What the binary's integration tests share: the `confab` command and a server that is killed
//! when dropped.

use std::process::{Child, Command};

/// The `confab` binary, with no CONFAB_* setting of the caller's environment leaking in.
pub(crate) fn confab() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confab"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONFAB_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A running server, killed when dropped.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
