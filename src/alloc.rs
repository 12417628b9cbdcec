//! The browser build's global allocator: power-of-two size classes, each a free list, carved from
//! the wasm memory with a bump pointer. It replaces std's dlmalloc, about 7 KB of code, for a few
//! hundred bytes (BENCHMARKS.md, "Browser entry size").
//!
//! Why it suits the SDK: what it allocates is small and short-lived (ids, frame text, closures,
//! the effects list), freed and allocated again in the same sizes message after message, so a
//! freed block is reused at once by the next allocation of its class: `alloc` and `dealloc` are
//! a few instructions each, with no search and no coalescing. The price is up to half of a block
//! unused (a 40-byte request takes a 64-byte block) and memory never moving between classes; a
//! wasm memory never shrinks anyway.
//!
//! A block of class `k` is `2^k` bytes and aligned to `2^k` (so any alignment up to its size is
//! met); the smallest class is 8 bytes, room for the free list's next pointer. Padding skipped to
//! align a new block is not lost: it is cut into smaller aligned blocks and put on their lists.

/// The smallest class (`2^3` = 8 bytes).
const MIN_CLASS: u32 = 3;
/// Classes `0..CLASSES` (indexes up to `2^31` bytes; index 0..=2 unused).
const CLASSES: usize = usize::BITS as usize;
/// The wasm page size.
pub(crate) const PAGE: usize = 65_536;

/// The class of a layout: `log2` of the block size that holds `size` bytes at `align`.
fn class(size: usize, align: usize) -> u32 {
    let need = size.max(align).max(1 << MIN_CLASS);
    usize::BITS - (need - 1).leading_zeros()
}

/// The allocator's state: the head of each class's free list (0 = empty) and the unused range
/// `next..end` at the top of memory.
pub(crate) struct Heap {
    free: [usize; CLASSES],
    next: usize,
    end: usize,
}

impl Heap {
    /// An empty heap; memory is taken on the first allocation.
    pub(crate) const fn new() -> Self {
        Self {
            free: [0; CLASSES],
            next: 0,
            end: 0,
        }
    }

    /// A block for `layout`, or 0 when `grow` refuses. `grow(pages)` adds that many pages and
    /// returns the address where they start (`None`: no more memory).
    ///
    /// # Safety
    ///
    /// Every address in the free lists and in `next..end` must be memory this heap owns: blocks
    /// it returned and got back through `dealloc` with their layout, and pages `grow` gave it.
    pub(crate) unsafe fn alloc(
        &mut self,
        size: usize,
        align: usize,
        mut grow: impl FnMut(usize) -> Option<usize>,
    ) -> usize {
        let k = class(size, align);
        if k as usize >= CLASSES - 1 {
            return 0;
        }
        let head = self.free[k as usize];
        if head != 0 {
            // SAFETY: `head` is a free block of class k >= 3 (8 bytes, 8-aligned) this heap owns;
            // its first word holds the next free block, written by `push`.
            self.free[k as usize] = unsafe { *(head as *const usize) };
            return head;
        }
        let block = 1usize << k;
        let mut start;
        loop {
            if self.next.checked_add(2 * block).is_none() {
                return 0;
            }
            start = (self.next + block - 1) & !(block - 1);
            let top = start + block;
            if top <= self.end {
                break;
            }
            let pages = (top - self.end).div_ceil(PAGE);
            let Some(base) = grow(pages) else { return 0 };
            if base != self.end {
                // Not contiguous with the old top (the memory was grown by someone else): the
                // rest of the old range is left unused.
                self.next = base;
            }
            self.end = base + pages * PAGE;
        }
        // Cut the alignment padding into aligned blocks (each the lowest set bit of its
        // address, at least 8 bytes as `next` is 8-aligned) and keep them.
        while self.next < start {
            let piece = self.next & self.next.wrapping_neg();
            let piece = piece.min(start - self.next);
            let piece = 1usize << (usize::BITS - 1 - piece.leading_zeros());
            // SAFETY: `next..start` is owned, unused memory; `piece` is a power of two >= 8 that
            // divides `next` and fits before `start`.
            unsafe { self.push(self.next, piece.trailing_zeros()) };
            self.next += piece;
        }
        self.next = start + block;
        start
    }

    /// Gives back a block that `alloc` returned for the same `size` and `align`.
    ///
    /// # Safety
    ///
    /// `ptr` came from `alloc(size, align, …)` of this heap and is not used after this call.
    pub(crate) unsafe fn dealloc(&mut self, ptr: usize, size: usize, align: usize) {
        // SAFETY: per this function's contract, the block is owned and of this class.
        unsafe { self.push(ptr, class(size, align)) }
    }

    /// Whether a block for (`old`, `align`) also holds `new` bytes at the same alignment (`realloc`
    /// then keeps it).
    pub(crate) fn same_class(old: usize, new: usize, align: usize) -> bool {
        class(old, align) == class(new, align)
    }

    /// The bytes this heap holds unused: its free blocks and the rest of its last pages. With the
    /// wasm memory's size this gives the bytes in use (tests: a closed channel leaves nothing).
    pub(crate) fn free_bytes(&self) -> usize {
        let mut n = self.end - self.next;
        for (k, &head) in self.free.iter().enumerate() {
            let mut p = head;
            while p != 0 {
                n += 1 << k;
                // SAFETY: `p` is a free block of class k this heap owns; its first word holds
                // the next free block, written by `push`.
                p = unsafe { *(p as *const usize) };
            }
        }
        n
    }

    /// Puts a free block on the list of class `k`.
    ///
    /// # Safety
    ///
    /// `ptr` is an owned, unused block of `2^k >= 8` bytes, aligned to 8.
    unsafe fn push(&mut self, ptr: usize, k: u32) {
        // SAFETY: per the contract, the first word of the block is ours to write.
        unsafe { *(ptr as *mut usize) = self.free[k as usize] };
        self.free[k as usize] = ptr;
    }
}

#[cfg(all(
    target_arch = "wasm32",
    feature = "browser",
    not(target_feature = "atomics")
))]
mod global {
    use super::{Heap, PAGE};
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;

    /// The global allocator of a build with the browser SDK.
    struct Allocator(UnsafeCell<Heap>);

    // SAFETY: this is compiled only for wasm32 without the `atomics` target feature, where there
    // is a single thread: the heap is never touched by two threads, and no call re-enters another
    // (the allocator calls nothing that allocates).
    unsafe impl Sync for Allocator {}

    #[global_allocator]
    static ALLOCATOR: Allocator = Allocator(UnsafeCell::new(Heap::new()));

    /// [`Heap::free_bytes`] of the global heap.
    pub(crate) fn free_bytes() -> usize {
        // SAFETY: single thread, and this is not called from inside the allocator: the only
        // reference to the heap now.
        unsafe { (*ALLOCATOR.0.get()).free_bytes() }
    }

    fn grow(pages: usize) -> Option<usize> {
        let old = core::arch::wasm32::memory_grow(0, pages);
        (old != usize::MAX).then(|| old * PAGE)
    }

    // SAFETY: `Heap` hands out disjoint blocks of at least the layout's size and alignment from
    // pages `memory_grow` gave it and nobody else uses (Rust's own data and stack lie below the
    // memory's initial size); a block comes back only through `dealloc` with its layout.
    unsafe impl GlobalAlloc for Allocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: single thread (above), so this is the only reference to the heap now.
            let heap = unsafe { &mut *self.0.get() };
            // SAFETY: the heap only ever holds blocks and pages it owns (see above).
            unsafe { heap.alloc(layout.size(), layout.align(), grow) as *mut u8 }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: single thread; `ptr` came from `alloc` with `layout` (GlobalAlloc's contract).
            unsafe { (*self.0.get()).dealloc(ptr as usize, layout.size(), layout.align()) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if Heap::same_class(layout.size(), new_size, layout.align()) {
                return ptr;
            }
            // SAFETY: GlobalAlloc's contract for `realloc` is that of `alloc` + copy + `dealloc`.
            unsafe {
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}

#[cfg(all(
    target_arch = "wasm32",
    feature = "browser",
    not(target_feature = "atomics")
))]
pub(crate) use global::free_bytes;

// Native only: proptest is a native dev-dependency.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
