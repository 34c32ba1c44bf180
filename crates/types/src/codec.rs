//! Bounded decoding of external bytes, and the encodings borsh and serde do not give us.
//!
//! Decoding follows one rule: check the total byte length against a cap before anything is
//! allocated, decode, reject trailing bytes, then check the structure. Every list inside a
//! wire type is read by a reader here that checks the claimed length against that list's
//! limit before it allocates, so a forged length prefix can never make the decoder reserve
//! more than the limit allows.
//!
//! The borsh encoding of every wire type is canonical: a value has exactly one encoding, and
//! bytes that decode re-encode to themselves (booleans, option tags and enum tags outside
//! their range are rejected by borsh; decimals are written normalised and a non-normalised
//! decimal is rejected here). A property test checks this, because a second encoding of the
//! same transaction would be a second transaction id.

use crate::error::DecodeError;
use borsh::BorshDeserialize;
use borsh::io::{self, Read, Write};
use rust_decimal::Decimal;

/// Decode one `T` from `bytes`, which must be at most `max_bytes` long and hold nothing
/// after the value. Structural validation is the caller's next step.
pub fn decode_bounded<T: BorshDeserialize>(
    bytes: &[u8],
    max_bytes: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    let mut rest = bytes;
    let value = T::deserialize(&mut rest).map_err(DecodeError::from_io)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { count: rest.len() });
    }
    Ok(value)
}

/// Wrap a limit violation found while decoding so that [`DecodeError::from_io`] can recover
/// the typed error from borsh's `io::Error` (a [`crate::error::ValidationError`] comes back typed; any
/// other error type comes back as its message).
pub(crate) fn limit_error<E: LimitError>(error: E) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// An error a bounded reader may raise.
pub(crate) trait LimitError: std::error::Error + Send + Sync + 'static {}
impl<E: std::error::Error + Send + Sync + 'static> LimitError for E {}

/// Read a borsh `u32` length prefix and check it against `max` before allocating.
fn read_len<R: Read, E: LimitError>(
    reader: &mut R,
    max: usize,
    too_long: impl FnOnce(usize) -> E,
) -> io::Result<usize> {
    let len = u32::deserialize_reader(reader)? as usize;
    if len > max {
        return Err(limit_error(too_long(len)));
    }
    Ok(len)
}

/// Read a borsh `Vec<T>` of at most `max` elements.
pub(crate) fn read_bounded_vec<R: Read, T: BorshDeserialize, E: LimitError>(
    reader: &mut R,
    max: usize,
    too_long: impl FnOnce(usize) -> E,
) -> io::Result<Vec<T>> {
    let len = read_len(reader, max, too_long)?;
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        out.push(T::deserialize_reader(reader)?);
    }
    Ok(out)
}

/// Read a borsh `Vec<u8>` of at most `max` bytes.
pub(crate) fn read_bounded_bytes<R: Read, E: LimitError>(
    reader: &mut R,
    max: usize,
    too_long: impl FnOnce(usize) -> E,
) -> io::Result<Vec<u8>> {
    let len = read_len(reader, max, too_long)?;
    let mut out = vec![0u8; len];
    reader.read_exact(&mut out)?;
    Ok(out)
}

/// Read a borsh `String` of at most `max` bytes of UTF-8.
pub(crate) fn read_bounded_string<R: Read, E: LimitError>(
    reader: &mut R,
    max: usize,
    too_long: impl FnOnce(usize) -> E,
) -> io::Result<String> {
    let bytes = read_bounded_bytes(reader, max, too_long)?;
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "string is not valid UTF-8"))
}

/// Write a decimal canonically: the normalised mantissa as `i128` then the scale as `u8`
/// (17 bytes). `1.50` and `1.5` are the same value and encode the same.
pub(crate) fn write_decimal<W: Write>(value: &Decimal, writer: &mut W) -> io::Result<()> {
    let value = value.normalize();
    // A decimal's scale is at most 28, so it fits a byte.
    let scale = u8::try_from(value.scale()).expect("bug: decimal scale above 255");
    writer.write_all(&value.mantissa().to_le_bytes())?;
    writer.write_all(&[scale])
}

/// Read a decimal written by [`write_decimal`], rejecting every other form of the same value.
pub(crate) fn read_decimal<R: Read>(reader: &mut R) -> io::Result<Decimal> {
    let mantissa = i128::deserialize_reader(reader)?;
    let scale = u8::deserialize_reader(reader)?;
    if scale > 0 && mantissa % 10 == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "decimal is not normalised (trailing zero digit)",
        ));
    }
    Decimal::try_from_i128_with_scale(mantissa, u32::from(scale))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "decimal out of range"))
}

/// Serde as lower-case hex for fixed 64-byte values (signatures).
pub(crate) mod hex_64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let text = <String as Deserialize>::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(&text, &mut out).map_err(|_| {
            serde::de::Error::custom(crate::hash::HexError {
                expected_bytes: 64,
                got_chars: text.len(),
            })
        })?;
        Ok(out)
    }
}

/// Serde as lower-case hex for variable-length bytes (withdrawal destinations).
pub(crate) mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <String as Deserialize>::deserialize(d)?;
        hex::decode(&text).map_err(|_| serde::de::Error::custom("expected hex bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ValidationError;
    use std::str::FromStr;

    fn decimal_bytes(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_decimal(&Decimal::from_str(text).unwrap(), &mut out).unwrap();
        out
    }

    #[test]
    fn equal_decimals_encode_equally() {
        assert_eq!(decimal_bytes("1.50"), decimal_bytes("1.5"));
        assert_eq!(decimal_bytes("100"), decimal_bytes("100.000"));
        assert_ne!(decimal_bytes("1.5"), decimal_bytes("15"));
        assert_eq!(decimal_bytes("0.01").len(), 17);
    }

    #[test]
    fn decimal_round_trips_and_rejects_other_forms() {
        for text in [
            "0",
            "1",
            "0.01",
            "-3.25",
            "79228162514264337593543950335",
            "1e-28",
        ] {
            let value = Decimal::from_scientific(text)
                .or_else(|_| Decimal::from_str(text))
                .unwrap();
            let bytes = decimal_bytes(&value.to_string());
            let back = read_decimal(&mut bytes.as_slice()).unwrap();
            assert_eq!(back, value);
        }
        // 1.50 written by hand with mantissa 150 and scale 2: not canonical.
        let mut forged = 150i128.to_le_bytes().to_vec();
        forged.push(2);
        assert!(read_decimal(&mut forged.as_slice()).is_err());
        // Zero with a scale is another form of zero.
        let mut forged = 0i128.to_le_bytes().to_vec();
        forged.push(1);
        assert!(read_decimal(&mut forged.as_slice()).is_err());
        // Scale above 28.
        let mut forged = 1i128.to_le_bytes().to_vec();
        forged.push(29);
        assert!(read_decimal(&mut forged.as_slice()).is_err());
        // Mantissa above 96 bits.
        let mut forged = (1i128 << 100).to_le_bytes().to_vec();
        forged.push(0);
        assert!(read_decimal(&mut forged.as_slice()).is_err());
    }

    #[test]
    fn bounded_vec_rejects_long_prefix_before_reading() {
        // Claims four billion elements but holds none: must fail on the limit, not on EOF.
        let bytes = u32::MAX.to_le_bytes();
        let err = read_bounded_vec::<_, u64, _>(&mut bytes.as_slice(), 8, |len| {
            ValidationError::TooManyLegs { count: len, max: 8 }
        })
        .unwrap_err();
        let typed = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<ValidationError>())
            .cloned();
        assert_eq!(
            typed,
            Some(ValidationError::TooManyLegs {
                count: u32::MAX as usize,
                max: 8
            })
        );
    }

    #[test]
    fn decode_bounded_checks_size_and_trailing_bytes() {
        let bytes = 7u64.to_le_bytes();
        assert_eq!(decode_bounded::<u64>(&bytes, 8).unwrap(), 7);
        assert_eq!(
            decode_bounded::<u64>(&bytes, 7),
            Err(DecodeError::TooLarge { len: 8, max: 7 })
        );
        assert_eq!(
            decode_bounded::<u32>(&bytes, 8),
            Err(DecodeError::TrailingBytes { count: 4 })
        );
        assert!(matches!(
            decode_bounded::<u64>(&bytes[..5], 8),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
