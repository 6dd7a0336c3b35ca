//! A small allocator for the wasm build, in place of the standard one (dlmalloc), which alone
//! would take a third of the package's size budget.
//!
//! Every block is a power of two (at least 8 bytes) taken from a free list for its size, or cut
//! from fresh memory (grown with `memory.grow`) at its natural alignment (up to 4 KiB). Freed
//! blocks go back on their list and are never merged: at most half of a block is wasted, which
//! suits a page's analytics queue (many small, similar strings). All operations are O(1).
//! WebAssembly in a page is single-threaded, so the state needs no lock.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32::{memory_grow, memory_size};
use core::cell::UnsafeCell;
use core::ptr::null_mut;

const PAGE: usize = 65_536;

struct Heap {
    /// Head of the free list of blocks of `1 << k` bytes, or 0.
    free: [usize; 32],
    next: usize,
    end: usize,
}

/// The allocator.
pub struct Allocator(UnsafeCell<Heap>);

// SAFETY: wasm32-unknown-unknown without atomics runs on one thread.
unsafe impl Sync for Allocator {}

impl Allocator {
    /// An empty heap; memory is claimed on first use.
    pub const fn new() -> Self {
        Allocator(UnsafeCell::new(Heap { free: [0; 32], next: 0, end: 0 }))
    }
}

fn class(size: usize, align: usize) -> usize {
    let size = size.max(align).max(8);
    (usize::BITS - (size - 1).leading_zeros()) as usize
}

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let k = class(layout.size(), layout.align());
        if k >= 31 {
            return null_mut();
        }
        // SAFETY: single-threaded, and nothing here allocates, so no other reference exists.
        let heap = unsafe { &mut *self.0.get() };
        let head = heap.free[k];
        if head != 0 {
            // SAFETY: a free block starts with the address of the next free block.
            heap.free[k] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        if heap.end == 0 {
            heap.end = memory_size(0) * PAGE;
            heap.next = heap.end;
        }
        let size = 1usize << k;
        let align = size.min(4096);
        let start = (heap.next + align - 1) & !(align - 1);
        let Some(next) = start.checked_add(size) else {
            return null_mut();
        };
        if next > heap.end {
            let pages = (next - heap.end).div_ceil(PAGE);
            if memory_grow(0, pages) == usize::MAX {
                return null_mut();
            }
            heap.end += pages * PAGE;
        }
        heap.next = next;
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let k = class(layout.size(), layout.align());
        // SAFETY: as in `alloc`; the block is at least 8 bytes and aligned for a usize.
        let heap = unsafe { &mut *self.0.get() };
        unsafe { *(ptr as *mut usize) = heap.free[k] };
        heap.free[k] = ptr as usize;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if class(layout.size(), layout.align()) == class(new_size, layout.align()) {
            return ptr;
        }
        // SAFETY: the caller guarantees a valid layout for `new_size` with the same alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
