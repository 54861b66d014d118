//! # inferchain-kernels-wasm
//!
//! `inferchain-kernels`' scalar reference compiled to a wasm module, for the determinism
//! matrix: the host writes one encoded [`Call`] into the module's memory, the module
//! computes it with the reference (software FMA, no SIMD, no libm) and hands back the
//! output's bytes, which the host compares with what its own CPU computed.
//!
//! Built for `wasm32v1-none` (`scripts/build-kernels-wasm.sh`); on any other target this
//! crate is empty. Exports: `input(len) -> ptr` (forgets earlier allocations and returns
//! a buffer for the encoded call), `replay(ptr, len) -> 1 | 0` (0: the bytes are not a
//! call), `output_ptr()`, `output_len()`.
//!
//! What it must not do: anything but replay; it has no imports, so a module run can only
//! compute.
#![cfg_attr(target_arch = "wasm32", no_std)]

#[cfg(target_arch = "wasm32")]
mod module {
    #![allow(unsafe_code)]
    extern crate alloc;

    use alloc::vec::Vec;
    use core::{
        alloc::{GlobalAlloc, Layout},
        cell::UnsafeCell,
    };
    use inferchain_kernels::call::{output_bytes, Call};

    /// A bump allocator over the module's memory, reset before each call.
    struct Bump {
        next: UnsafeCell<usize>,
    }

    // SAFETY: a wasm32v1-none module is single-threaded.
    unsafe impl Sync for Bump {}

    extern "C" {
        static __heap_base: u8;
    }

    const PAGE: usize = 65_536;

    impl Bump {
        fn base() -> usize {
            // The linker defines `__heap_base`; only its address is taken.
            core::ptr::addr_of!(__heap_base) as usize
        }

        fn reset(&self) {
            // SAFETY: single-threaded (see `Sync`).
            unsafe { *self.next.get() = Self::base() }
        }
    }

    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: single-threaded (see `Sync`).
            let next = unsafe { &mut *self.next.get() };
            if *next == 0 {
                *next = Self::base();
            }
            let start = (*next + layout.align() - 1) & !(layout.align() - 1);
            let end = match start.checked_add(layout.size()) {
                Some(e) => e,
                None => return core::ptr::null_mut(),
            };
            let have = core::arch::wasm32::memory_size::<0>() * PAGE;
            if end > have {
                let pages = (end - have).div_ceil(PAGE);
                if core::arch::wasm32::memory_grow::<0>(pages) == usize::MAX {
                    return core::ptr::null_mut();
                }
            }
            *next = end;
            start as *mut u8
        }

        unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
    }

    #[global_allocator]
    static ALLOC: Bump = Bump {
        next: UnsafeCell::new(0),
    };

    struct Output(UnsafeCell<Vec<u8>>);
    // SAFETY: single-threaded (see `Bump`).
    unsafe impl Sync for Output {}
    static OUTPUT: Output = Output(UnsafeCell::new(Vec::new()));

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        core::arch::wasm32::unreachable()
    }

    /// Forgets every earlier allocation and returns a buffer of `len` bytes.
    #[no_mangle]
    pub extern "C" fn input(len: u32) -> u32 {
        // SAFETY: single-threaded; the old output is dropped before memory is reused.
        unsafe { *OUTPUT.0.get() = Vec::new() };
        ALLOC.reset();
        let mut buf: Vec<u8> = Vec::with_capacity(len as usize);
        let ptr = buf.as_mut_ptr() as u32;
        core::mem::forget(buf);
        ptr
    }

    /// Decodes and computes the call in `ptr..ptr + len`; 1 on success.
    #[no_mangle]
    pub extern "C" fn replay(ptr: u32, len: u32) -> u32 {
        // SAFETY: the host wrote `len` bytes at `ptr` (a buffer from `input`).
        let bytes = unsafe { core::slice::from_raw_parts(ptr as *const u8, len as usize) };
        match Call::decode(bytes) {
            Some(call) => {
                let out = output_bytes(&call.eval());
                // SAFETY: single-threaded.
                unsafe { *OUTPUT.0.get() = out };
                1
            }
            None => 0,
        }
    }

    #[no_mangle]
    pub extern "C" fn output_ptr() -> u32 {
        // SAFETY: single-threaded.
        unsafe { (*OUTPUT.0.get()).as_ptr() as u32 }
    }

    #[no_mangle]
    pub extern "C" fn output_len() -> u32 {
        // SAFETY: single-threaded.
        unsafe { (*OUTPUT.0.get()).len() as u32 }
    }
}
