//! Training a head with candle-nn: one hidden ReLU layer (or none: linear), AdamW with a cosine
//! learning-rate decay, dropout on the hidden layer, cross-entropy with class weights at a power of
//! full balancing (0.5 = square root: full balancing cost accuracy on the majority class in
//! calibration runs), seeded initialisation, shuffling and dropout masks. Several members trained
//! from consecutive seeds are merged into one head that averages their logits (their hidden layers
//! side by side), then a softmax temperature is fitted on held-out rows.

use super::mlp::{softmax, Dense, MlpHead};
use super::HeadError;
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

/// Default hidden dropout: regularising the wider head gained 0.5–1 point of AIVIVN polarity in
/// cross-validation on the training rows (see models/heads/README.md).
pub const DROPOUT: f64 = 0.3;
/// Default ensemble size (seed-to-seed spread of one head is ±1 point on AIVIVN polarity).
pub const ENSEMBLE: usize = 3;

/// Training options; defaults are what the shipped heads use.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Hidden units; 0 = a linear head.
    pub hidden: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    /// Class weight = (n / (k · n_c))^power; 0 = unweighted, 1 = fully balanced.
    pub class_weight_power: f64,
    /// Dropout probability on the hidden layer while training (0 = none).
    pub dropout: f64,
    /// Cosine decay of the learning rate to zero over all steps (false = constant).
    pub cosine_decay: bool,
    /// Members trained from seeds `seed, seed + 1, …` and merged (their logits averaged).
    pub ensemble: usize,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            hidden: 256,
            epochs: 40,
            learning_rate: 2e-3,
            weight_decay: 1e-2,
            batch_size: 128,
            class_weight_power: 0.5,
            dropout: DROPOUT,
            cosine_decay: true,
            ensemble: ENSEMBLE,
            seed: 7,
        }
    }
}

impl TrainOptions {
    /// The earlier recipe (one member, no dropout, constant learning rate) that trained the shipped
    /// topic head; the newer defaults were validated on sentiment only.
    pub fn single_head() -> Self {
        TrainOptions { dropout: 0.0, cosine_decay: false, ensemble: 1, ..Self::default() }
    }
}

/// A small deterministic generator (splitmix64) for initialisation and shuffling.
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn symmetric(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

fn err(e: candle_core::Error) -> HeadError {
    HeadError::Train(e.to_string())
}

/// Class weights for labels `y` over `classes` classes.
pub fn class_weights(y: &[usize], classes: usize, power: f64) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    y.iter().for_each(|&c| counts[c] += 1);
    let n = y.len() as f64;
    counts.iter().map(|&c| if c == 0 { 0.0 } else { (n / (classes as f64 * c as f64)).powf(power) as f32 }).collect()
}

/// Trains a head on centred embeddings `x` with labels `y` (indices into `labels`): `opts.ensemble`
/// members from consecutive seeds, merged. `progress(member, epoch, mean_loss)` is called after
/// each epoch of each member (members count from 1).
pub fn train_head(
    x: &[Vec<f32>],
    y: &[usize],
    labels: Vec<String>,
    center: Vec<f32>,
    encoder: String,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, usize, f32),
) -> Result<MlpHead, HeadError> {
    let mut members = Vec::new();
    for m in 0..opts.ensemble.max(1) {
        let member_opts = TrainOptions { seed: opts.seed.wrapping_add(m as u64), ..opts.clone() };
        let head = train_one(x, y, labels.clone(), center.clone(), encoder.clone(), &member_opts, &mut |e, l| {
            progress(m + 1, e, l)
        })?;
        members.push(head);
    }
    merge_members(members)
}

/// One head whose logits are the mean of the members' logits: a linear member's layer is averaged;
/// one-hidden-layer members are put side by side (hidden units concatenated, output weights / k).
pub fn merge_members(mut members: Vec<MlpHead>) -> Result<MlpHead, HeadError> {
    let k = members.len();
    if k <= 1 {
        return members.pop().ok_or_else(|| HeadError::Train("no members to merge".into()));
    }
    let shape = members[0].layers.len();
    if members.iter().any(|m| m.layers.len() != shape || m.center != members[0].center) || !(1..=2).contains(&shape) {
        return Err(HeadError::Train("members differ in shape or centre, or have more than one hidden layer".into()));
    }
    let scale = 1.0 / k as f32;
    let mean_bias = |layer: usize| -> Vec<f32> {
        let width = members[0].layers[layer].bias.len();
        (0..width).map(|j| members.iter().map(|m| m.layers[layer].bias[j]).sum::<f32>() * scale).collect()
    };
    let last = shape - 1;
    let out_bias = mean_bias(last);
    let classes = out_bias.len();
    let mut out_weight: Vec<Vec<f32>> = vec![Vec::new(); classes];
    if shape == 1 {
        for (c, row) in out_weight.iter_mut().enumerate() {
            let width = members[0].layers[0].weight[c].len();
            *row = (0..width).map(|i| members.iter().map(|m| m.layers[0].weight[c][i]).sum::<f32>() * scale).collect();
        }
        let mut head = members.swap_remove(0);
        head.layers = vec![Dense { weight: out_weight, bias: out_bias }];
        return Ok(head);
    }
    let mut hidden = Dense { weight: Vec::new(), bias: Vec::new() };
    for m in &members {
        hidden.weight.extend(m.layers[0].weight.iter().cloned());
        hidden.bias.extend(m.layers[0].bias.iter().copied());
        for (c, row) in out_weight.iter_mut().enumerate() {
            row.extend(m.layers[1].weight[c].iter().map(|w| w * scale));
        }
    }
    let mut head = members.swap_remove(0);
    head.layers = vec![hidden, Dense { weight: out_weight, bias: out_bias }];
    Ok(head)
}

fn train_one(
    x: &[Vec<f32>],
    y: &[usize],
    labels: Vec<String>,
    center: Vec<f32>,
    encoder: String,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, f32),
) -> Result<MlpHead, HeadError> {
    let dim = center.len();
    let classes = labels.len();
    if x.is_empty() || x.len() != y.len() || y.iter().any(|&c| c >= classes) {
        return Err(HeadError::Train("no rows, or labels out of range".into()));
    }
    let dev = Device::Cpu;
    let mut rng = SeededRng::new(opts.seed);
    let widths: Vec<usize> = if opts.hidden == 0 { vec![dim, classes] } else { vec![dim, opts.hidden, classes] };
    let mut vars = Vec::new();
    for pair in widths.windows(2) {
        let (fan_in, fan_out) = (pair[0], pair[1]);
        let bound = (6.0 / (fan_in + fan_out) as f32).sqrt(); // Glorot uniform
        let w: Vec<f32> = (0..fan_in * fan_out).map(|_| rng.symmetric() * bound).collect();
        vars.push(Var::from_tensor(&Tensor::from_vec(w, (fan_out, fan_in), &dev).map_err(err)?).map_err(err)?);
        vars.push(Var::from_tensor(&Tensor::zeros(fan_out, DType::F32, &dev).map_err(err)?).map_err(err)?);
    }
    let params = ParamsAdamW { lr: opts.learning_rate, weight_decay: opts.weight_decay, ..Default::default() };
    let mut optimizer = AdamW::new(vars.clone(), params).map_err(err)?;
    let weights = class_weights(y, classes, opts.class_weight_power);
    let centred: Vec<f32> = x.iter().flat_map(|row| row.iter().zip(&center).map(|(v, c)| v - c)).collect();
    let all_x = Tensor::from_vec(centred, (x.len(), dim), &dev).map_err(err)?;
    let mut order: Vec<u32> = (0..x.len() as u32).collect();
    let batch_size = opts.batch_size.max(1);
    let total_steps = (opts.epochs * x.len().div_ceil(batch_size)).max(1);
    let mut step = 0usize;
    let dropout = if opts.hidden == 0 { 0.0 } else { opts.dropout.clamp(0.0, 0.95) };
    for epoch in 0..opts.epochs {
        rng.shuffle(&mut order);
        let (mut total, mut batches) = (0f32, 0usize);
        for chunk in order.chunks(batch_size) {
            if opts.cosine_decay {
                let progress = step as f64 / total_steps as f64;
                optimizer.set_learning_rate(opts.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()));
            }
            step += 1;
            let idx = Tensor::from_slice(chunk, chunk.len(), &dev).map_err(err)?;
            let xb = all_x.index_select(&idx, 0).map_err(err)?;
            let yb: Vec<u32> = chunk.iter().map(|&i| y[i as usize] as u32).collect();
            let wb: Vec<f32> = chunk.iter().map(|&i| weights[y[i as usize]]).collect();
            let mask = if dropout > 0.0 {
                // Inverted dropout: kept units scaled by 1 / (1 - p), so inference needs no change.
                let keep = (1.0 / (1.0 - dropout)) as f32;
                let m: Vec<f32> = (0..chunk.len() * opts.hidden)
                    .map(|_| if (rng.symmetric() + 1.0) * 0.5 < dropout as f32 { 0.0 } else { keep })
                    .collect();
                Some(Tensor::from_vec(m, (chunk.len(), opts.hidden), &dev).map_err(err)?)
            } else {
                None
            };
            let loss = weighted_cross_entropy(&forward(&vars, &xb, mask.as_ref())?, &yb, &wb, &dev)?;
            optimizer.backward_step(&loss).map_err(err)?;
            total += loss.to_scalar::<f32>().map_err(err)?;
            batches += 1;
        }
        progress(epoch + 1, total / batches.max(1) as f32);
    }
    let mut layers = Vec::new();
    for pair in vars.chunks(2) {
        let weight = pair[0].as_tensor().to_vec2::<f32>().map_err(err)?;
        let bias = pair[1].as_tensor().to_vec1::<f32>().map_err(err)?;
        layers.push(Dense { weight, bias });
    }
    Ok(MlpHead { labels, center, layers, temperature: 1.0, encoder })
}

/// Forward pass; `hidden_mask` (batch × hidden) multiplies the hidden activations (dropout).
fn forward(vars: &[Var], x: &Tensor, hidden_mask: Option<&Tensor>) -> Result<Tensor, HeadError> {
    let mut h = x.clone();
    let layers = vars.len() / 2;
    for (i, pair) in vars.chunks(2).enumerate() {
        h = h.matmul(&pair[0].as_tensor().t().map_err(err)?).map_err(err)?;
        h = h.broadcast_add(pair[1].as_tensor()).map_err(err)?;
        if i + 1 < layers {
            h = h.relu().map_err(err)?;
            if let Some(mask) = hidden_mask {
                h = h.mul(mask).map_err(err)?;
            }
        }
    }
    Ok(h)
}

fn weighted_cross_entropy(logits: &Tensor, y: &[u32], w: &[f32], dev: &Device) -> Result<Tensor, HeadError> {
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1).map_err(err)?;
    let yt = Tensor::from_slice(y, (y.len(), 1), dev).map_err(err)?;
    let picked = log_p.gather(&yt, 1).map_err(err)?.squeeze(1).map_err(err)?;
    let wt = Tensor::from_slice(w, w.len(), dev).map_err(err)?;
    let total = (picked * &wt).map_err(err)?.sum_all().map_err(err)?;
    let norm = wt.sum_all().map_err(err)?;
    total.neg().map_err(err)?.div(&norm).map_err(err)
}

/// The temperature that minimises negative log-likelihood on held-out rows (grid 0.3..5).
pub fn fit_temperature(head: &MlpHead, x: &[Vec<f32>], y: &[usize]) -> f32 {
    let logits: Vec<Vec<f32>> = x.iter().map(|e| head.logits(e)).collect();
    let nll = |t: f32| -> f32 {
        logits.iter().zip(y).map(|(l, &c)| -softmax(l, t)[c].max(1e-9).ln()).sum::<f32>() / y.len().max(1) as f32
    };
    (3..=50).map(|i| i as f32 / 10.0).min_by(|a, b| nll(*a).total_cmp(&nll(*b))).unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_problem_and_is_reproducible() {
        let mut rng = SeededRng::new(1);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..300 {
            let class = i % 3;
            let mut v: Vec<f32> = (0..8).map(|_| rng.symmetric() * 0.3).collect();
            v[class] += 1.0;
            x.push(v);
            y.push(class);
        }
        let labels = vec!["a".into(), "b".into(), "c".into()];
        let opts = TrainOptions { hidden: 16, epochs: 30, batch_size: 32, ..Default::default() };
        let train = || train_head(&x, &y, labels.clone(), vec![0.0; 8], "t".into(), &opts, &mut |_, _, _| {}).unwrap();
        let head = train();
        let correct = x.iter().zip(&y).filter(|(e, &c)| {
            let p = head.probabilities(e);
            p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|m| m.0) == Some(c)
        });
        assert!(correct.count() >= 285);
        assert_eq!(head, train(), "same seed, same head");
        assert_eq!(head.layers[0].bias.len(), 16 * ENSEMBLE, "members side by side");
        let t = fit_temperature(&head, &x, &y);
        assert!((0.3..=5.0).contains(&t));
    }

    #[test]
    fn merged_members_average_their_logits() {
        let member = |s: f32| MlpHead {
            labels: vec!["a".into(), "b".into()],
            center: vec![0.1, -0.2],
            layers: vec![
                Dense { weight: vec![vec![s, -1.0], vec![0.5, s]], bias: vec![0.1, s] },
                Dense { weight: vec![vec![1.0, s], vec![-s, 2.0]], bias: vec![s, 0.3] },
            ],
            temperature: 1.0,
            encoder: "t".into(),
        };
        let members = vec![member(1.0), member(-0.5), member(2.0)];
        let merged = merge_members(members.clone()).unwrap();
        for x in [[0.3f32, 0.9], [-1.0, 0.2], [2.0, -3.0]] {
            let want: Vec<f32> = (0..2).map(|c| members.iter().map(|m| m.logits(&x)[c]).sum::<f32>() / 3.0).collect();
            let got = merged.logits(&x);
            assert!(want.iter().zip(&got).all(|(a, b)| (a - b).abs() < 1e-5), "{want:?} vs {got:?}");
        }
        let linear = |s: f32| MlpHead { layers: vec![member(s).layers[1].clone()], ..member(s) };
        let merged = merge_members(vec![linear(1.0), linear(3.0)]).unwrap();
        assert_eq!(merged.logits(&[0.1, -0.2]), linear(2.0).logits(&[0.1, -0.2]));
    }

    #[test]
    fn square_root_class_weights() {
        let w = class_weights(&[0, 0, 0, 1], 2, 0.5);
        assert!((w[0] - (4.0f32 / 6.0).sqrt()).abs() < 1e-6 && (w[1] - 2.0f32.sqrt()).abs() < 1e-6);
    }
}
