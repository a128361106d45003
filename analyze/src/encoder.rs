//! Texts to embeddings: tokenise, sort by length (padding dominates short posts), cut into batches
//! under a token budget, run the backend, pool, and return embeddings in input order.

use crate::backend::{mean_pool_normalise, Backend, BackendError, PaddedBatch};
use crate::tokenize::{PostTokenizer, TokenizeError};

/// One L2-normalised embedding.
pub type Embedding = Vec<f32>;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Tokenizer + backend + batching policy.
pub struct Encoder {
    tokenizer: PostTokenizer,
    backend: Box<dyn Backend>,
    /// Most tokens (rows × padded length) in one forward pass.
    batch_max_tokens: usize,
}

impl Encoder {
    pub fn new(tokenizer: PostTokenizer, backend: Box<dyn Backend>, batch_max_tokens: usize) -> Self {
        Self { tokenizer, backend, batch_max_tokens }
    }

    pub fn backend_name(&self) -> String {
        self.backend.name()
    }

    pub fn tokenizer(&self) -> &PostTokenizer {
        &self.tokenizer
    }

    /// Embeds `texts` (posts; the e5 query prefix is added), in input order. `progress` is called
    /// with the number of texts done after each batch.
    pub fn embed(&mut self, texts: &[&str], progress: &mut dyn FnMut(usize)) -> Result<Vec<Embedding>, EncodeError> {
        let tokens = texts.iter().map(|t| self.tokenizer.encode(t)).collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&[u32]> = tokens.iter().map(Vec::as_slice).collect();
        self.embed_tokens(&refs, progress)
    }

    /// Embeds already tokenised sequences, in input order.
    pub fn embed_tokens(
        &mut self,
        tokens: &[&[u32]],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Embedding>, EncodeError> {
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| tokens[i].len());
        let mut out: Vec<Embedding> = vec![Vec::new(); tokens.len()];
        let mut done = 0;
        for batch_idx in plan_batches(&order, |i| tokens[i].len(), self.batch_max_tokens) {
            let seqs: Vec<&[u32]> = batch_idx.iter().map(|&i| tokens[i]).collect();
            let batch = PaddedBatch::new(&seqs, self.tokenizer.pad_id());
            let hidden = self.backend.hidden_states(&batch)?;
            for (&i, emb) in batch_idx.iter().zip(mean_pool_normalise(&hidden, &batch)) {
                out[i] = emb;
            }
            done += batch_idx.len();
            progress(done);
        }
        Ok(out)
    }
}

/// Cuts `order` (indices sorted by length) into batches whose rows × longest length stays within
/// `budget` tokens; a single over-long sequence still gets a batch of its own.
pub fn plan_batches(order: &[usize], len: impl Fn(usize) -> usize, budget: usize) -> Vec<Vec<usize>> {
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0;
    for &i in order {
        let l = len(i).max(1);
        let new_longest = longest.max(l);
        if !current.is_empty() && new_longest * (current.len() + 1) > budget {
            batches.push(std::mem::take(&mut current));
            longest = 0;
        }
        longest = longest.max(l);
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn batches_cover_every_index_once_and_respect_the_budget(
            lens in proptest::collection::vec(1usize..200, 0..300),
            budget in 1usize..5000,
        ) {
            let mut order: Vec<usize> = (0..lens.len()).collect();
            order.sort_by_key(|&i| lens[i]);
            let batches = plan_batches(&order, |i| lens[i], budget);
            let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
            for b in &batches {
                let longest = b.iter().map(|&i| lens[i]).max().unwrap();
                prop_assert!(b.len() == 1 || longest * b.len() <= budget);
            }
        }
    }
}
