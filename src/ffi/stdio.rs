//! `FILE *` streams as `std::io::Write`, so the library's output goes through
//! the same stdio buffers as the C program's own `printf` and stays in order.

use std::io;

extern "C" {
    static mut stdout: *mut libc::FILE;
    static mut stderr: *mut libc::FILE;
}

/// A borrowed C stream; every write is followed by `fflush`, so a log is
/// never lost when a server is killed (the tutorials' bug 17).
pub struct CFile(pub *mut libc::FILE);

// SAFETY: stdio streams lock internally; the FILE outlives the flow by contract.
unsafe impl Send for CFile {}

impl CFile {
    /// The given stream, or C's `stdout` when NULL.
    pub fn or_stdout(f: *mut libc::FILE) -> CFile {
        // SAFETY: reading the libc global `stdout` pointer.
        CFile(if f.is_null() { unsafe { stdout } } else { f })
    }

    /// C's `stderr`.
    pub fn stderr() -> CFile {
        // SAFETY: reading the libc global `stderr` pointer.
        CFile(unsafe { stderr })
    }
}

impl io::Write for CFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: self.0 is a valid FILE* (never NULL, see constructors).
        let n = unsafe { libc::fwrite(buf.as_ptr().cast(), 1, buf.len(), self.0) };
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::last_os_error());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // SAFETY: as above.
        if unsafe { libc::fflush(self.0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
