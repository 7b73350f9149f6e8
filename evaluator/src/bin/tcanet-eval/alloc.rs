//! Memory for one short run over tens of megabytes, read by two or more
//! threads at once: glibc's allocator tuned (large steps, large blocks
//! kept, an arena per thread so that threads never wait on each other's
//! lock) and, for large inputs, its memory in transparent huge pages where
//! the kernel offers them on request (2 MiB page faults instead of 4 KiB
//! ones: hundreds instead of thousands). Elsewhere nothing is changed.

/// Inputs of at least this many bytes in all get huge pages (smaller
/// runs would mostly hold partly used ones).
pub const LARGE_INPUTS: u64 = 16 << 20;

/// Tunes the allocator; before any other thread exists.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; no other thread
    // exists yet.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

/// Starts rayon's global pool; with `huge_pages`, the main heap and the
/// heap of each worker's arena (glibc gives a new thread its own arena
/// when it first allocates) are first advised for huge pages.
pub fn start_thread_pool(huge_pages: bool) {
    let builder = rayon::ThreadPoolBuilder::new();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let builder = if huge_pages {
        // SAFETY: see `advise_huge_main_heap` and `advise_huge_thread_heap`;
        // no other thread exists yet.
        unsafe { advise_huge_main_heap() };
        builder.start_handler(|_| unsafe { advise_huge_thread_heap() })
    } else {
        builder
    };
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = huge_pages;
    // Already built (never, in this binary) is as good.
    let _ = builder.build_global();
}

/// Grows the main heap once now (by the top pad) and asks for transparent
/// huge pages over it. Nothing happens where the heap is not one `brk`
/// region.
///
/// # Safety
/// Calls glibc's allocator and `madvise` on the heap it owns; advice
/// changes paging only, never contents.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe fn advise_huge_main_heap() {
    const HUGE: usize = 2 << 20;
    let block = libc::malloc(1 << 20);
    if block.is_null() {
        return;
    }
    let top = libc::sbrk(0) as usize;
    let start = (block as usize).next_multiple_of(HUGE);
    if top > start {
        libc::madvise(start as *mut libc::c_void, top - start, libc::MADV_HUGEPAGE);
    }
    // Freed into the heap, which keeps it (the trim threshold is higher).
    libc::free(block);
}

/// Asks for transparent huge pages over the heap of the calling thread's
/// arena: glibc maps a thread arena's heaps as regions of 64 MiB aligned
/// to their size, grown in place. Nothing happens for a block from the
/// main heap (below the `brk` end).
///
/// # Safety
/// As `advise_huge_main_heap`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe fn advise_huge_thread_heap() {
    const HEAP_MAX: usize = 64 << 20;
    let block = libc::malloc(1 << 20);
    if block.is_null() {
        return;
    }
    if block as usize > libc::sbrk(0) as usize {
        let heap = block as usize & !(HEAP_MAX - 1);
        libc::madvise(heap as *mut libc::c_void, HEAP_MAX, libc::MADV_HUGEPAGE);
    }
    libc::free(block);
}
