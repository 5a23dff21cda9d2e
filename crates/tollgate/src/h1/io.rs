//! The one piece of I/O both ends share: writing a head and its body (or several
//! pieces) in as few vectored writes as the socket takes.

use std::io::IoSlice;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Writes every byte of `parts`, in as few writes as the socket takes.
pub async fn write_all<W: AsyncWrite + Unpin>(
    io: &mut W,
    mut parts: &mut [IoSlice<'_>],
) -> std::io::Result<()> {
    IoSlice::advance_slices(&mut parts, 0);
    while !parts.is_empty() {
        let written = io.write_vectored(parts).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut parts, written);
    }
    Ok(())
}
