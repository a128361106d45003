//! Topics: one prototype per configured topic, built from its Vietnamese and English descriptions
//! and examples in config/topics.toml, so a city adds a topic by editing that file. Embeddings of
//! this encoder all sit close together (same-topic cosine 0.83 vs 0.81 otherwise), so both sides are
//! centred on the embedding mean before the cosine. When a trained topic head exists, its
//! probabilities are averaged with the prototypes' for the topics it knows.

use super::mlp::{softmax, MlpHead};
use schema::config::TopicsConfig;
use schema::{TopicId, TopicScore};

/// Softmax temperature over prototype cosines: turns cosines into comparable scores in [0, 1].
pub const PROTOTYPE_TEMPERATURE: f32 = 0.05;
/// Threshold of a topic whose config says 0.0.
pub const DEFAULT_THRESHOLD: f32 = 0.3;
/// Weight of the trained head where it knows the topic (the prototypes get the rest).
pub const HEAD_WEIGHT: f32 = 0.6;

/// The topic classifier.
#[derive(Debug, Clone)]
pub struct TopicModel {
    ids: Vec<TopicId>,
    prototypes: Vec<Vec<f32>>,
    thresholds: Vec<f32>,
    center: Vec<f32>,
    /// For each topic, its index among the head's outputs.
    head: Option<(MlpHead, Vec<Option<usize>>)>,
    max_topics: usize,
}

/// Scores of one post.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicScores {
    /// Passing topics ranked, or `other` first followed by the best candidates.
    pub ranked: Vec<TopicScore>,
    /// The best configured topic regardless of thresholds.
    pub best: TopicId,
    /// The post's centred cosine to its nearest prototype: how close it comes to any configured
    /// topic in absolute terms (the scores are relative to each other).
    pub best_cosine: f32,
}

/// The texts that make up a topic's prototype.
pub fn prototype_texts(config: &TopicsConfig) -> Vec<Vec<String>> {
    config
        .topic
        .iter()
        .map(|t| {
            let mut texts = vec![t.description_vi.clone(), t.description_en.clone()];
            texts.extend(t.examples.iter().cloned());
            texts
        })
        .collect()
}

/// Subtracts `center` and re-normalises.
pub fn centre(embedding: &[f32], center: &[f32]) -> Vec<f32> {
    let v: Vec<f32> = embedding.iter().zip(center).map(|(e, c)| e - c).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.into_iter().map(|x| x / norm).collect()
}

impl TopicModel {
    /// `text_embeddings[t]` are the embeddings of `prototype_texts(config)[t]`.
    pub fn build(
        config: &TopicsConfig,
        text_embeddings: &[Vec<Vec<f32>>],
        center: Vec<f32>,
        head: Option<MlpHead>,
    ) -> Self {
        let prototypes = text_embeddings
            .iter()
            .map(|embs| {
                let mut sum = vec![0f32; center.len()];
                for e in embs {
                    for (s, v) in sum.iter_mut().zip(centre(e, &center)) {
                        *s += v;
                    }
                }
                centre(&sum, &vec![0.0; center.len()])
            })
            .collect();
        let ids: Vec<TopicId> = config.topic.iter().map(|t| t.id.clone()).collect();
        let thresholds =
            config.topic.iter().map(|t| if t.threshold == 0.0 { DEFAULT_THRESHOLD } else { t.threshold }).collect();
        let head = head.map(|h| {
            let index = ids.iter().map(|id| h.labels.iter().position(|l| l == id.as_str())).collect();
            (h, index)
        });
        TopicModel { ids, prototypes, thresholds, center, head, max_topics: config.max_topics_per_post.max(1) }
    }

    /// One score in [0, 1] per configured topic, in config order.
    pub fn scores(&self, embedding: &[f32]) -> Vec<f32> {
        self.scores_of(embedding, &self.cosines(embedding))
    }

    /// The post's centred cosine to each prototype, in config order.
    fn cosines(&self, embedding: &[f32]) -> Vec<f32> {
        let post = centre(embedding, &self.center);
        self.prototypes.iter().map(|p| p.iter().zip(&post).map(|(a, b)| a * b).sum()).collect()
    }

    fn scores_of(&self, embedding: &[f32], cosines: &[f32]) -> Vec<f32> {
        let mut scores = softmax(cosines, PROTOTYPE_TEMPERATURE);
        if let Some((head, index)) = &self.head {
            let p = head.probabilities(embedding);
            for (score, idx) in scores.iter_mut().zip(index) {
                if let Some(i) = idx {
                    *score = HEAD_WEIGHT * p[*i] + (1.0 - HEAD_WEIGHT) * *score;
                }
            }
        }
        scores
    }

    /// Ranked multi-label output with thresholds; `other` first when nothing passes.
    pub fn classify(&self, embedding: &[f32]) -> TopicScores {
        let cosines = self.cosines(embedding);
        let best_cosine = cosines.iter().copied().fold(f32::MIN, f32::max);
        let scores = self.scores_of(embedding, &cosines);
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let best = self.ids[order[0]].clone();
        let passing: Vec<TopicScore> = order
            .iter()
            .filter(|&&i| scores[i] >= self.thresholds[i])
            .take(self.max_topics)
            .map(|&i| TopicScore { id: self.ids[i].clone(), score: scores[i] })
            .collect();
        let ranked = if passing.is_empty() {
            let mut r = vec![TopicScore { id: TopicId::other(), score: 1.0 - scores[order[0]] }];
            r.extend(order.iter().take(2).map(|&i| TopicScore { id: self.ids[i].clone(), score: scores[i] }));
            r
        } else {
            passing
        };
        TopicScores { ranked, best, best_cosine }
    }

    pub fn ids(&self) -> &[TopicId] {
        &self.ids
    }
}
