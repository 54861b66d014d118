//! The limits an inference worker process puts on itself before it runs a model chosen by
//! governance on an input chosen by anyone: an address-space cap (an allocation past it
//! fails, and the worker dies instead of the machine swapping or the kernel's OOM killer
//! picking the node), a CPU-time budget per run (`SIGXCPU` ends the worker), no core
//! files, no network (a seccomp filter makes `socket` and `io_uring_setup` fail, and
//! with them `execve`, `ptrace` and cross-process memory access), and no files beyond the
//! model store (Landlock: read-only access beneath the paths given, nothing else — not
//! the node's keystore, database or home).
//!
//! Linux only; elsewhere each call returns `ErrorKind::Unsupported` and the worker says
//! so at start. What it must not do: limit the node itself. Only [`crate::worker`] calls it,
//! in the worker process.

use std::io;

/// Caps the process's address space at `bytes` (`RLIMIT_AS`) and turns core files off.
pub fn limit_memory(bytes: u64) -> io::Result<()> {
    imp::set_limit(imp::Resource::AddressSpace, bytes, bytes)?;
    imp::set_limit(imp::Resource::Core, 0, 0)
}

/// Lets the process use `secs` more seconds of CPU time (all threads together) from now;
/// past them the kernel sends `SIGXCPU`, which ends it.
pub fn cpu_budget(secs: u64) -> io::Result<()> {
    let used = imp::cpu_seconds_used()?;
    let hard = imp::hard_limit(imp::Resource::CpuTime)?;
    let soft = used.saturating_add(secs.max(1)).min(hard);
    imp::set_limit(imp::Resource::CpuTime, soft, hard)
}

/// Denies the process new sockets of any family: `socket` and `io_uring_setup` fail with
/// `EACCES` from now on, and so do `execve`, `execveat`, `ptrace` and
/// `process_vm_readv`/`writev`. (The node starts workers through `std::process::Command`, which
/// passes only stdin, stdout and stderr: every other descriptor Rust opens is
/// close-on-exec.)
pub fn deny_network() -> io::Result<()> {
    imp::deny_network()
}

/// Confines the process's file access, for good, to reading beneath `readable` (files
/// and directories; nothing may be written, created or removed anywhere). Already open
/// descriptors (the worker's pipes) are unaffected. Returns the kernel's Landlock ABI
/// version; `ErrorKind::Unsupported` where the kernel has no Landlock.
pub fn confine_files(readable: &[&std::path::Path]) -> io::Result<u32> {
    imp::confine_files(readable)
}

/// The kernel's Landlock ABI version, if it has Landlock (a query; confines nothing).
pub fn landlock_abi() -> Option<u32> {
    imp::landlock_abi()
}

/// The address space the process maps now, in bytes (`VmSize`; `None` where unknown).
pub fn address_space() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The address-space cap in force, in bytes (`None`: unlimited).
pub fn memory_limit() -> io::Result<Option<u64>> {
    imp::soft_limit(imp::Resource::AddressSpace)
}

// FFI: rlimits, rusage, seccomp and Landlock have no safe std API; each block is one
// libc call on values owned here.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod imp {
    use std::io;

    #[derive(Clone, Copy)]
    pub enum Resource {
        AddressSpace,
        Core,
        CpuTime,
    }

    fn resource(r: Resource) -> libc::__rlimit_resource_t {
        match r {
            Resource::AddressSpace => libc::RLIMIT_AS,
            Resource::Core => libc::RLIMIT_CORE,
            Resource::CpuTime => libc::RLIMIT_CPU,
        }
    }

    fn get(r: Resource) -> io::Result<libc::rlimit> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid, writable rlimit.
        if unsafe { libc::getrlimit(resource(r), &mut lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(lim)
    }

    pub fn hard_limit(r: Resource) -> io::Result<u64> {
        Ok(get(r)?.rlim_max as u64)
    }

    pub fn soft_limit(r: Resource) -> io::Result<Option<u64>> {
        let cur = get(r)?.rlim_cur;
        Ok((cur != libc::RLIM_INFINITY).then_some(cur as u64))
    }

    pub fn set_limit(r: Resource, soft: u64, hard: u64) -> io::Result<()> {
        let old = get(r)?;
        // A process may lower its hard limit but never raise it.
        let hard = (hard as libc::rlim_t).min(old.rlim_max);
        let lim = libc::rlimit {
            rlim_cur: (soft as libc::rlim_t).min(hard),
            rlim_max: hard,
        };
        // SAFETY: `lim` is a valid rlimit.
        if unsafe { libc::setrlimit(resource(r), &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn cpu_seconds_used() -> io::Result<u64> {
        // SAFETY: an all-zero rusage is a valid value to be overwritten.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is valid and writable.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        let used = micros(usage.ru_utime) + micros(usage.ru_stime);
        // Rounded up: the kernel counts whole seconds, so the budget starts at the next.
        Ok(used.div_ceil(1_000_000))
    }

    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub fn deny_network() -> io::Result<()> {
        const LD_W_ABS: u16 = 0x20;
        const JEQ_K: u16 = 0x15;
        const JGE_K: u16 = 0x35;
        const RET_K: u16 = 0x06;
        // `struct seccomp_data`: the syscall number at offset 0, the arch at offset 4.
        const NR: u32 = 0;
        const ARCH: u32 = 4;
        // x32 system calls carry this bit; none is allowed a way around the filter.
        const X32_BIT: u32 = 0x4000_0000;
        let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        let deny = libc::SECCOMP_RET_ERRNO | libc::EACCES as u32;
        // New sockets, and what a compromised worker would reach the node with: another
        // program, or the memory of a process of the same user.
        let denied = [
            libc::SYS_socket,
            libc::SYS_io_uring_setup,
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
        ];
        let n = denied.len() as u8;
        // Layout: 4 header instructions, one comparison per denied call, ALLOW, DENY.
        let deny_at = 5 + n;
        let mut filter = vec![
            op(LD_W_ABS, 0, 0, ARCH),
            op(JEQ_K, 0, deny_at - 2, AUDIT_ARCH), // a foreign arch: deny
            op(LD_W_ABS, 0, 0, NR),
            op(JGE_K, deny_at - 4, 0, X32_BIT),
        ];
        for (i, nr) in denied.iter().enumerate() {
            let at = 4 + i as u8;
            filter.push(op(JEQ_K, deny_at - (at + 1), 0, *nr as u32));
        }
        filter.push(op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
        filter.push(op(RET_K, 0, 0, deny));
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: plain prctl calls; `prog` points at `filter`, alive for the call (the
        // kernel copies the program).
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub fn deny_network() -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// `struct landlock_ruleset_attr` (its first field; later ABIs add more, and the
    /// kernel takes the size it is given).
    #[repr(C)]
    struct RulesetAttr {
        handled_access_fs: u64,
    }

    /// `struct landlock_path_beneath_attr` (packed in the kernel's header).
    #[repr(C, packed)]
    struct PathBeneathAttr {
        allowed_access: u64,
        parent_fd: i32,
    }

    const CREATE_RULESET_VERSION: u32 = 1;
    const RULE_PATH_BENEATH: u32 = 1;
    const READ_FILE: u64 = 1 << 2;
    const READ_DIR: u64 = 1 << 3;

    /// Closes a descriptor when dropped.
    struct Fd(i32);

    impl Drop for Fd {
        fn drop(&mut self) {
            // SAFETY: the descriptor is owned here and closed once.
            unsafe { libc::close(self.0) };
        }
    }

    pub fn landlock_abi() -> Option<u32> {
        // SAFETY: the version query takes no attribute (null, size 0).
        let abi = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<RulesetAttr>(),
                0usize,
                CREATE_RULESET_VERSION,
            )
        };
        (abi >= 1).then_some(abi as u32)
    }

    pub fn confine_files(readable: &[&std::path::Path]) -> io::Result<u32> {
        use std::os::unix::ffi::OsStrExt;
        let Some(abi) = landlock_abi() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the kernel has no Landlock",
            ));
        };
        // Every file right of ABI 1 (execute … make symlink), and from ABI 2 `REFER`
        // (linking across directories), from 3 `TRUNCATE`, from 5 device ioctls: all
        // denied unless a rule grants them.
        let mut handled: u64 = (1 << 13) - 1;
        if abi >= 2 {
            handled |= 1 << 13;
        }
        if abi >= 3 {
            handled |= 1 << 14;
        }
        if abi >= 5 {
            handled |= 1 << 15;
        }
        let attr = RulesetAttr {
            handled_access_fs: handled,
        };
        // SAFETY: `attr` is a valid ruleset attribute of the size given.
        let ruleset = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                std::mem::size_of::<RulesetAttr>(),
                0u32,
            )
        };
        if ruleset < 0 {
            return Err(io::Error::last_os_error());
        }
        let ruleset = Fd(ruleset as i32);
        for path in readable {
            let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in a path"))?;
            // SAFETY: `c_path` is a valid C string; O_PATH opens no file contents.
            let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = Fd(fd);
            // A file takes only file rights; a directory both.
            let is_dir = std::fs::metadata(path)?.is_dir();
            let rule = PathBeneathAttr {
                allowed_access: if is_dir {
                    READ_FILE | READ_DIR
                } else {
                    READ_FILE
                },
                parent_fd: fd.0,
            };
            // SAFETY: `rule` is a valid path-beneath attribute; both descriptors are open.
            let added = unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset.0,
                    RULE_PATH_BENEATH,
                    &rule as *const PathBeneathAttr,
                    0u32,
                )
            };
            if added != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: plain prctl and syscall on the ruleset descriptor owned here.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::syscall(libc::SYS_landlock_restrict_self, ruleset.0, 0u32) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(abi)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    #[derive(Clone, Copy)]
    pub enum Resource {
        AddressSpace,
        Core,
        CpuTime,
    }

    pub fn hard_limit(_: Resource) -> io::Result<u64> {
        Err(io::ErrorKind::Unsupported.into())
    }
    pub fn soft_limit(_: Resource) -> io::Result<Option<u64>> {
        Err(io::ErrorKind::Unsupported.into())
    }
    pub fn set_limit(_: Resource, _: u64, _: u64) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    pub fn cpu_seconds_used() -> io::Result<u64> {
        Err(io::ErrorKind::Unsupported.into())
    }
    pub fn deny_network() -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    pub fn confine_files(_: &[&std::path::Path]) -> io::Result<u32> {
        Err(io::ErrorKind::Unsupported.into())
    }
    pub fn landlock_abi() -> Option<u32> {
        None
    }
}
