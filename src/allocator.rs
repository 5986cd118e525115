//! The process allocator (jemalloc, configured in `.cargo/config.toml`) and its figures for `/metrics`.
//!
//! glibc's malloc kept freed memory resident: up to eight arenas per core, and a dynamic mmap
//! threshold that, once a large buffer had been freed, served the next large buffers from
//! those arenas, where they stayed after being freed. Under sustained overload that slack was
//! 30–60 MiB on top of the live heap and varied from run to run. jemalloc serves allocations
//! over 64 KiB from a dedicated arena that returns freed pages at once and purges the rest
//! within a second from a background thread, so resident memory follows what is live.

use vigil_store::exposition::{Exposition, Single};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Writes the allocator's figures to `page`.
pub fn render_metrics(page: &mut Exposition) {
    use tikv_jemalloc_ctl::{epoch, stats};
    // The statistics are a snapshot refreshed by advancing the epoch.
    if epoch::advance().is_err() {
        return;
    }
    let figures = [
        (
            "vigil_memory_allocated_bytes",
            "Bytes of heap memory the process has allocated and not freed.",
            stats::allocated::read(),
        ),
        (
            "vigil_memory_active_bytes",
            "Bytes in the allocator's active pages (allocated plus their size-class rounding).",
            stats::active::read(),
        ),
        (
            "vigil_memory_resident_bytes",
            "Bytes of the allocator's pages resident in physical memory, its metadata included.",
            stats::resident::read(),
        ),
        (
            "vigil_memory_allocator_metadata_bytes",
            "Bytes the allocator uses for its own bookkeeping.",
            stats::metadata::read(),
        ),
    ];
    for (name, help, value) in figures {
        if let Ok(v) = value {
            page.single(Single::Gauge, name, help, v as f64);
        }
    }
}
