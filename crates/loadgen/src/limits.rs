//! The open-file limit: raise it, and refuse a concurrency that cannot fit, before any
//! socket is opened (a run that dies of `EMFILE` halfway measures nothing useful).

use crate::error::{Error, Result};

/// Descriptors kept aside for everything that is not a client socket: stdio, the runtimes'
/// epoll and wake-up descriptors, the JSON file, and sockets of an in-process server.
pub const RESERVED_FILES: u64 = 64;

/// Raises the soft open-file limit to the hard one and returns the new soft limit.
///
/// # Errors
/// [`Error::FileLimit`] if the limit cannot be read or set.
pub fn raise_open_files_limit() -> Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX).map_err(Error::FileLimit)
}

/// Checks that `concurrency` client sockets fit under `limit` open files.
///
/// # Errors
/// [`Error::TooManyConnections`] saying how many connections fit.
pub fn check_fits(concurrency: u64, limit: u64) -> Result<()> {
    let needed = concurrency.saturating_add(RESERVED_FILES);
    if needed <= limit {
        return Ok(());
    }
    Err(Error::TooManyConnections {
        requested: concurrency,
        needed,
        limit,
        fit: limit.saturating_sub(RESERVED_FILES),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_concurrency_that_fits_is_accepted() {
        assert!(check_fits(1000, 20_000).is_ok());
    }

    #[test]
    fn a_concurrency_that_does_not_fit_is_refused_saying_how_many_fit() {
        let error = check_fits(30_000, 20_000).expect_err("30000 sockets cannot fit in 20000");
        let message = error.to_string();
        assert!(
            message.contains("at most 19936 connections fit"),
            "{message}"
        );
        assert!(message.contains("30000"), "{message}");
    }
}
