//! dex-p2p (being built).
