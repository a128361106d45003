//! Texts to embeddings: tokenise, sort by length (padding dominates short posts), cut into batches
//! under a token budget, run the backend, pool, and return embeddings in input order.

use crate::backend::{mean_pool_normalise, Backend, BackendError, PaddedBatch};
use crate::tokenize::{PostTokenizer, TokenizeError};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One L2-normalised embedding.
pub type Embedding = Vec<f32>;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Tokenizer + backends + batching policy.
pub struct Encoder {
    tokenizer: PostTokenizer,
    /// One per worker: batches go to whichever is free, each on its own thread.
    backends: Vec<Box<dyn Backend>>,
    /// Most tokens (rows × padded length) in one forward pass.
    batch_max_tokens: usize,
}

impl Encoder {
    /// `backends` must not be empty.
    pub fn new(tokenizer: PostTokenizer, backends: Vec<Box<dyn Backend>>, batch_max_tokens: usize) -> Self {
        assert!(!backends.is_empty(), "an encoder needs a backend");
        Self { tokenizer, backends, batch_max_tokens }
    }

    pub fn backend_name(&self) -> String {
        self.backends[0].name()
    }

    pub fn workers(&self) -> usize {
        self.backends.len()
    }

    /// One encoder per backend, sharing the tokenizer and batching policy (the analyze service
    /// runs each on its own model thread).
    pub fn into_workers(self) -> Vec<Encoder> {
        let Self { tokenizer, backends, batch_max_tokens } = self;
        backends.into_iter().map(|b| Encoder::new(tokenizer.clone(), vec![b], batch_max_tokens)).collect()
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
        let batches = plan_batches(&order, |i| tokens[i].len(), self.batch_max_tokens);
        let pad = self.tokenizer.pad_id();
        let mut out: Vec<Embedding> = vec![Vec::new(); tokens.len()];
        let mut done = 0;
        let mut place = |batch: &[usize], embeddings: Vec<Embedding>| {
            for (&i, emb) in batch.iter().zip(embeddings) {
                out[i] = emb;
            }
            done += batch.len();
            progress(done);
        };
        if let [backend] = self.backends.as_mut_slice() {
            for batch in &batches {
                place(batch, run_batch(backend.as_mut(), tokens, batch, pad)?);
            }
        } else {
            run_parallel(&mut self.backends, tokens, &batches, pad, &mut place)?;
        }
        Ok(out)
    }
}

/// One forward pass and pooling: the embeddings of `batch` (indices into `tokens`), in order.
fn run_batch(
    backend: &mut dyn Backend,
    tokens: &[&[u32]],
    batch: &[usize],
    pad: u32,
) -> Result<Vec<Embedding>, BackendError> {
    let seqs: Vec<&[u32]> = batch.iter().map(|&i| tokens[i]).collect();
    let padded = PaddedBatch::new(&seqs, pad);
    let hidden = backend.hidden_states(&padded)?;
    Ok(mean_pool_normalise(&hidden, &padded))
}

/// Every backend on its own thread takes the next batch until none is left; `place` runs on the
/// caller's thread as results arrive. The first error stops the others after their current batch.
fn run_parallel(
    backends: &mut [Box<dyn Backend>],
    tokens: &[&[u32]],
    batches: &[Vec<usize>],
    pad: u32,
    place: &mut dyn FnMut(&[usize], Vec<Embedding>),
) -> Result<(), BackendError> {
    let next = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for backend in backends.iter_mut() {
            let (tx, next) = (tx.clone(), &next);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(i) else { return };
                let result = run_batch(backend.as_mut(), tokens, batch, pad);
                let failed = result.is_err();
                if tx.send((i, result)).is_err() || failed {
                    return;
                }
            });
        }
        drop(tx);
        let mut first_error = None;
        for (i, result) in rx {
            match result {
                Ok(embeddings) => place(&batches[i], embeddings),
                Err(err) => {
                    next.store(batches.len(), Ordering::Relaxed);
                    first_error.get_or_insert(err);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    })
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

    /// Hidden states that depend only on each token id (so any backend gives the same result);
    /// fails on a batch holding `fail_on`.
    struct FakeBackend {
        fail_on: Option<u32>,
    }

    impl Backend for FakeBackend {
        fn name(&self) -> String {
            "fake".into()
        }

        fn hidden_states(&mut self, batch: &PaddedBatch) -> Result<Vec<f32>, BackendError> {
            if batch.ids.iter().any(|&id| Some(id as u32) == self.fail_on) {
                return Err(BackendError::Forward("fake failure".into()));
            }
            let hidden = crate::backend::HIDDEN;
            Ok(batch.ids.iter().flat_map(|&id| (0..hidden).map(move |d| ((id as usize * 7 + d) % 13) as f32)).collect())
        }
    }

    fn fakes(n: usize, fail_on: Option<u32>) -> Vec<Box<dyn Backend>> {
        (0..n).map(|_| Box::new(FakeBackend { fail_on }) as Box<dyn Backend>).collect()
    }

    #[test]
    fn parallel_workers_give_what_one_gives_each_batch_once() {
        let owned: Vec<Vec<u32>> = (0..200u32).map(|i| (0..1 + i % 37).map(|t| 5 + (t * i) % 90).collect()).collect();
        let tokens: Vec<&[u32]> = owned.iter().map(Vec::as_slice).collect();
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| tokens[i].len());
        let batches = plan_batches(&order, |i| tokens[i].len(), 256);
        let mut one = fakes(1, None);
        let expected: Vec<Vec<Embedding>> =
            batches.iter().map(|b| run_batch(one[0].as_mut(), &tokens, b, 1).unwrap()).collect();
        let mut got: Vec<Option<Vec<Embedding>>> = vec![None; batches.len()];
        let mut done = 0;
        run_parallel(&mut fakes(3, None), &tokens, &batches, 1, &mut |batch, e| {
            let i = batches.iter().position(|b| b.as_slice() == batch).unwrap();
            assert!(got[i].replace(e).is_none(), "batch {i} twice");
            done += batch.len();
        })
        .unwrap();
        assert_eq!(done, tokens.len());
        assert_eq!(got.into_iter().map(Option::unwrap).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn a_failing_worker_fails_the_call() {
        let owned: Vec<Vec<u32>> = (0..50u32).map(|i| vec![10 + i; 3]).collect();
        let tokens: Vec<&[u32]> = owned.iter().map(Vec::as_slice).collect();
        let batches: Vec<Vec<usize>> = (0..50).map(|i| vec![i]).collect();
        let err = run_parallel(&mut fakes(2, Some(30)), &tokens, &batches, 1, &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("fake failure"), "{err}");
    }

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
