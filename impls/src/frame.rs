//! Length-prefixed frames: a 4-byte big-endian length, then that many bytes of payload.
//!
//! A frame longer than the reader's limit is an error, not an allocation: a malformed or hostile
//! peer cannot make a node allocate more than the limit.

use std::io::{self, Read, Write};

/// The largest payload a node accepts by default.
pub const MAX_FRAME: usize = 16 << 20;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the limit of {1} bytes")]
    Oversized(usize, usize),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Writes `payload` as one frame, to a stream (`&TcpStream`, where it leaves at once) or to a
/// buffer (`BufWriter`, where it waits). It does not flush: a writer with a buffer writes the
/// frames it has, then flushes once.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame longer than 4 GiB"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(payload)
}

/// Reads one frame of at most `limit` bytes. `Ok(None)` at a clean end of stream (between frames).
pub fn read_frame(r: &mut impl Read, limit: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(FrameError::Oversized(len, limit));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        write_frame(&mut buf, b"").unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r, 16).unwrap().unwrap(), b"hello");
        assert_eq!(read_frame(&mut r, 16).unwrap().unwrap(), b"");
        assert!(read_frame(&mut r, 16).unwrap().is_none());
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &[7; 100]).unwrap();
        assert!(matches!(
            read_frame(&mut &buf[..], 10),
            Err(FrameError::Oversized(100, 10))
        ));
        assert!(matches!(
            read_frame(&mut &buf[..50], 1000),
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_frame(&mut &buf[..2], 1000),
            Err(FrameError::Truncated)
        ));
    }

    proptest! {
        /// Random bytes never panic the decoder nor make it allocate past its limit.
        #[test]
        fn random_bytes_are_decoded_or_rejected(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let mut r = &bytes[..];
            while let Ok(Some(frame)) = read_frame(&mut r, 512) {
                prop_assert!(frame.len() <= 512);
            }
        }

        #[test]
        fn any_payloads_round_trip(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..10)) {
            let mut buf = Vec::new();
            for p in &payloads {
                write_frame(&mut buf, p).unwrap();
            }
            let mut r = &buf[..];
            for p in &payloads {
                prop_assert_eq!(&read_frame(&mut r, 300).unwrap().unwrap(), p);
            }
            prop_assert!(read_frame(&mut r, 300).unwrap().is_none());
        }
    }
}
