//! dex-engine (being built).
