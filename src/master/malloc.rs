//! Keeps a master's freed memory from piling up in glibc's heap.
//!
//! A master allocates and frees large buffers all the time: a run's record serialized for each save,
//! sled's values and their 4 KiB parts, pulled batches. glibc serves an allocation over its mmap
//! threshold (128 KiB) with a mapping of its own, returned to the system on free, but each such free
//! raises the threshold to that size (up to 32 MiB), so the next ones come from the heap, and a heap
//! fragmented by them is seldom trimmed. The soak (`bench/soak.sh`) showed it: with the adaptive
//! threshold the masters' RSS kept rising (the 25-minute `soak.md` of e470a3d) while a heap
//! profiler saw far less live heap than RSS; with both thresholds fixed at 128 KiB it is flat (the
//! 60-minute `bench/results/soak.md`). sled's own page cache is bounded separately (`cache_capacity`).

/// Fixes glibc's mmap threshold and trim threshold at 128 KiB, unless the environment already sets
/// them (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`). Does nothing on other C libraries.
pub fn bound_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const BYTES: libc::c_int = 128 * 1024;
        for (param, env) in [
            (libc::M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_"),
            (libc::M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_"),
        ] {
            if std::env::var_os(env).is_none() {
                // SAFETY: mallopt only sets allocator parameters; it is called before the
                // runtime's worker threads allocate much, and glibc serializes it with malloc.
                unsafe {
                    libc::mallopt(param, BYTES);
                }
            }
        }
    }
}
