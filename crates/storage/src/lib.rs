//! dex-storage (being built).
