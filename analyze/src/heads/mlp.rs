//! A small MLP head stored as JSON (readable, diffable, a few hundred KB): optional centring vector,
//! dense layers with ReLU between them, softmax with a calibrated temperature.

use super::HeadError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One dense layer: `weight` is `out × in`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    pub weight: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
}

impl Dense {
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        self.weight.iter().zip(&self.bias).map(|(row, b)| b + dot(row, x)).collect()
    }
}

/// Dot product in 8 independent lanes: a plain iterator sum is one long dependency chain the
/// compiler may not reorder (float addition is not associative), so it never vectorises; the
/// sentiment head's 1,536×384 layer made that a few percent of `eval`'s time.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (ca, cb) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += ca[i] * cb[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The head file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpHead {
    /// Class names in output order.
    pub labels: Vec<String>,
    /// Subtracted from the embedding first (the embedding space's mean; corrects its anisotropy).
    pub center: Vec<f32>,
    pub layers: Vec<Dense>,
    /// Softmax temperature fitted on held-out data.
    pub temperature: f32,
    /// Encoder the head was trained on (a head is only valid for that encoder).
    pub encoder: String,
}

impl MlpHead {
    pub fn load(path: &Path) -> Result<Self, HeadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| HeadError::Load { path: path.display().to_string(), message: e.to_string() })?;
        let head: MlpHead = serde_json::from_str(&text)
            .map_err(|e| HeadError::Malformed { path: path.display().to_string(), message: e.to_string() })?;
        head.check().map_err(|message| HeadError::Malformed { path: path.display().to_string(), message })?;
        Ok(head)
    }

    pub fn save(&self, path: &Path) -> Result<(), HeadError> {
        let err = |e: std::io::Error| HeadError::Write { path: path.display().to_string(), message: e.to_string() };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let text = serde_json::to_string(self).map_err(|e| HeadError::Train(e.to_string()))?;
        std::fs::write(path, text).map_err(err)
    }

    fn check(&self) -> Result<(), String> {
        let mut width = self.center.len();
        for (i, layer) in self.layers.iter().enumerate() {
            if layer.weight.iter().any(|row| row.len() != width) || layer.weight.len() != layer.bias.len() {
                return Err(format!("layer {i} does not fit input width {width}"));
            }
            width = layer.bias.len();
        }
        if width != self.labels.len() || self.layers.is_empty() {
            return Err(format!("output width {width} but {} labels", self.labels.len()));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err("temperature must be positive".into());
        }
        Ok(())
    }

    /// Raw logits (before temperature).
    pub fn logits(&self, embedding: &[f32]) -> Vec<f32> {
        let mut x: Vec<f32> = embedding.iter().zip(&self.center).map(|(e, c)| e - c).collect();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x);
            if i + 1 < self.layers.len() {
                x.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
        x
    }

    /// Calibrated class probabilities.
    pub fn probabilities(&self, embedding: &[f32]) -> Vec<f32> {
        softmax(&self.logits(embedding), self.temperature)
    }
}

/// Softmax of `logits / temperature`.
pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| ((l - max) / temperature).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> MlpHead {
        MlpHead {
            labels: vec!["a".into(), "b".into()],
            center: vec![0.5, 0.0],
            layers: vec![
                Dense { weight: vec![vec![1.0, 0.0], vec![0.0, 1.0]], bias: vec![0.0, 0.0] },
                Dense { weight: vec![vec![2.0, 0.0], vec![0.0, 2.0]], bias: vec![0.0, 0.1] },
            ],
            temperature: 1.0,
            encoder: "test".into(),
        }
    }

    #[test]
    fn forward_centres_applies_relu_and_softmax() {
        let head = tiny();
        // centred x = [-0.5, 1.0] → relu [0, 1] → logits [0, 2.1]
        assert_eq!(head.logits(&[0.0, 1.0]), vec![0.0, 2.1]);
        let p = head.probabilities(&[0.0, 1.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[1] > 0.8);
    }

    #[test]
    fn malformed_shapes_are_rejected() {
        let mut head = tiny();
        head.layers[1].bias.pop();
        assert!(head.check().is_err());
    }
}
