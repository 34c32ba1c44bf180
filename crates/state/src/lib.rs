//! dex-state (being built).
