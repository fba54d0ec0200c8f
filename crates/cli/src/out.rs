//! Writing to standard output for a reader that may stop early.
//!
//! `println!` panics when standard output is a pipe whose reader has gone (`tollgate config
//! check f.yaml | head -3`): Rust ignores `SIGPIPE`, so the write fails and the macro panics
//! with a stack trace. The commands print through [`outln!`] and [`out!`] instead: a closed
//! pipe ends the process quietly with status 0, as `head` means it; any other write error
//! is said once, with status 1.

use std::io::Write;

/// Writes `args` (and a line break if `newline`) to standard output.
pub(crate) fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut o = std::io::stdout().lock();
    let written = o
        .write_fmt(args)
        .and_then(|()| if newline { o.write_all(b"\n") } else { Ok(()) });
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` for a reader that may stop early.
macro_rules! outln {
    () => { $crate::out::write(format_args!(""), true) };
    ($($t:tt)*) => { $crate::out::write(format_args!($($t)*), true) };
}

/// `print!` for a reader that may stop early.
macro_rules! out {
    ($($t:tt)*) => { $crate::out::write(format_args!($($t)*), false) };
}
