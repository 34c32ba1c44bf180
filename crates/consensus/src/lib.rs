//! dex-consensus (being built).
