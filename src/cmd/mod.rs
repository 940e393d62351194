//! One module per subcommand: flags → typed role config → library call → terminal output.

pub mod analyze;
pub mod analyze_manifest;
pub mod config;
pub mod lsp;
pub mod server;
pub mod worker;
