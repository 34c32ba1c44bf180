//! Process-wide memory settings for the long-running binaries (`dexd`, `dex-load`).

/// Turn transparent huge pages off for this process.
///
/// The allocator asks the kernel for huge pages on its arenas, so the first touch of each
/// 2 MiB region faults and zeroes all of it at once, and regions the allocator gives back
/// and takes again are zeroed again. A validator touches fresh memory continually (the
/// API's read model grows, block-sized buffers come and go): in a profile of a loaded
/// cluster, zeroing huge pages took about 15% of a validator's CPU, and with huge pages off
/// the CPU per committed order fell by about that much. Call it first thing in `main`; it
/// applies to every thread, including ones already started.
///
/// Returns whether the setting took effect (it cannot on other systems, or in a sandbox
/// that refuses `prctl`; the process then runs as before).
pub fn disable_transparent_huge_pages() -> bool {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_thp_disable(true).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_after_the_call() {
        // The flag belongs to the whole process, so turning it on in the test binary harms
        // nothing; a kernel that refuses prctl leaves the flag as it was.
        if super::disable_transparent_huge_pages() {
            assert_eq!(nix::sys::prctl::get_thp_disable(), Ok(true));
        }
    }
}
