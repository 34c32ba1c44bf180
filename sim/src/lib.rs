//! dex-sim (being built).
