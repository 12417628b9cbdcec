//! The size-class allocator on a native arena: random allocations and frees never overlap, are
//! aligned, stay inside the pages given, reuse freed blocks, and are counted by `free_bytes`.

use super::{class, Heap, PAGE};
use proptest::prelude::*;

/// Pages handed out from one buffer, optionally with a gap before each grant (memory grown by
/// someone else in between).
struct Arena {
    buf: Vec<u64>,
    used: usize,
    gap: usize,
}

impl Arena {
    fn new(pages: usize, gap: usize) -> Self {
        Self {
            buf: vec![0; pages * PAGE / 8],
            used: 0,
            gap,
        }
    }

    fn base(&self) -> usize {
        self.buf.as_ptr() as usize
    }

    fn grow(&mut self, pages: usize) -> Option<usize> {
        let at = self.used + self.gap;
        if (at + pages) * PAGE > self.buf.len() * 8 {
            return None;
        }
        self.used = at + pages;
        Some(self.base() + at * PAGE)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Alloc { size: usize, align_log: u32 },
    Free(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let size = prop_oneof![1usize..64, 1usize..600, 1usize..70_000];
    let op = prop_oneof![
        3 => (size, 0u32..7).prop_map(|(size, align_log)| Op::Alloc { size, align_log }),
        2 => any::<usize>().prop_map(Op::Free),
    ];
    prop::collection::vec(op, 1..300)
}

fn run(ops: &[Op], gap: usize) {
    let mut arena = Arena::new(160, gap);
    let mut heap = Heap::new();
    // (address, size, align, fill byte)
    let mut live: Vec<(usize, usize, usize, u8)> = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        match *op {
            Op::Alloc { size, align_log } => {
                let align = 1 << align_log;
                // SAFETY: the heap only holds what it got from this arena and from `alloc`.
                let p = unsafe { heap.alloc(size, align, |pages| arena.grow(pages)) };
                if p == 0 {
                    continue; // the arena is full
                }
                assert_eq!(p % align, 0, "alignment {align} for {size} bytes");
                assert!(p >= arena.base() && p + size <= arena.base() + arena.used * PAGE);
                for &(q, qs, _, _) in &live {
                    assert!(
                        p + size <= q || q + qs <= p,
                        "{p:#x}+{size} overlaps {q:#x}+{qs}"
                    );
                }
                let fill = n as u8;
                // SAFETY: `p..p + size` is a block just handed out, inside the arena.
                unsafe { core::ptr::write_bytes(p as *mut u8, fill, size) };
                live.push((p, size, align, fill));
            }
            Op::Free(i) if !live.is_empty() => {
                let (p, size, align, fill) = live.swap_remove(i % live.len());
                // SAFETY: a live block of this heap; nothing else wrote into it.
                let bytes = unsafe { core::slice::from_raw_parts(p as *const u8, size) };
                assert!(
                    bytes.iter().all(|&b| b == fill),
                    "block {p:#x} was overwritten"
                );
                // SAFETY: given back once, with its layout.
                unsafe { heap.dealloc(p, size, align) };
            }
            Op::Free(_) => {}
        }
    }
    if gap == 0 {
        // Every byte of the pages given is in a block, held or free, or not yet carved.
        let held: usize = live.iter().map(|&(_, s, a, _)| 1usize << class(s, a)).sum();
        assert_eq!(heap.free_bytes() + held, arena.used * PAGE);
    }
}

proptest! {
    #[test]
    fn blocks_are_disjoint_aligned_and_intact(ops in ops()) {
        run(&ops, 0);
    }

    #[test]
    fn memory_grown_by_someone_else_in_between(ops in ops()) {
        run(&ops, 1);
    }
}

#[test]
fn a_freed_block_is_reused_by_its_class() {
    let mut arena = Arena::new(4, 0);
    let mut heap = Heap::new();
    // SAFETY: blocks of this heap, each freed once with its layout.
    unsafe {
        let a = heap.alloc(40, 8, |p| arena.grow(p));
        heap.dealloc(a, 40, 8);
        assert_eq!(
            heap.alloc(33, 4, |p| arena.grow(p)),
            a,
            "33..=64 bytes share a class"
        );
        let b = heap.alloc(24, 8, |p| arena.grow(p));
        assert_ne!(a, b);
        assert!(Heap::same_class(40, 64, 8));
        assert!(!Heap::same_class(64, 65, 8));
    }
}

#[test]
fn refused_growth_gives_null() {
    let mut heap = Heap::new();
    // SAFETY: nothing is handed out.
    assert_eq!(unsafe { heap.alloc(16, 8, |_| None) }, 0);
}
