//! HiveSync's analysis engine. Pure: no network, no async, no database — only files in, plain
//! data out. The language server, the CLI (`hivesync analyze`) and the backend's workers all ask
//! it the same questions.
