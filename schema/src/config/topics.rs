//! `topics.toml`: the city's topics. Each topic has descriptions in Vietnamese and English and
//! example posts; the classifier builds a prototype from them, so a city adds a topic by editing
//! this file, without retraining. `other` is implicit: given when no topic passes its threshold.

use super::problems::FileProblems;
use crate::ids::TopicId;
use serde::Deserialize;

/// The whole of topics.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// At most this many topics per post (multi-label). Default 3.
    #[serde(default = "three")]
    pub max_topics_per_post: usize,
    #[serde(default)]
    pub topic: Vec<Topic>,
}

fn three() -> usize {
    3
}

/// One topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub id: TopicId,
    /// Display names.
    pub label_vi: String,
    pub label_en: String,
    /// What belongs to the topic (and briefly what does not), one or two sentences each.
    pub description_vi: String,
    pub description_en: String,
    /// Example phrases or posts, mixed languages. At least 3.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Score a post must reach for this topic, in the classifier's score units; 0.0 = the model's
    /// default. Default 0.0.
    #[serde(default)]
    pub threshold: f32,
}

impl TopicsConfig {
    pub fn ids(&self) -> impl Iterator<Item = &TopicId> {
        self.topic.iter().map(|t| &t.id)
    }

    pub fn validate(&self, p: &mut FileProblems<'_>) {
        p.check(!self.topic.is_empty(), "topic", "at least one [[topic]] is needed");
        p.check(self.max_topics_per_post >= 1, "max_topics_per_post", "must be at least 1");
        p.unique(self.topic.iter().map(|t| t.id.as_str()), "topic id");
        for (i, t) in self.topic.iter().enumerate() {
            p.check(t.id.as_str() != "other", format!("topic[{i}].id"), "`other` is implicit; do not define it");
            for (key, value) in [
                ("label_vi", &t.label_vi),
                ("label_en", &t.label_en),
                ("description_vi", &t.description_vi),
                ("description_en", &t.description_en),
            ] {
                p.check(
                    !value.trim().is_empty(),
                    format!("topic[{i}].{key}"),
                    format!("topic {:?} needs a {key}", t.id.as_str()),
                );
            }
            p.check(t.examples.len() >= 3, format!("topic[{i}].examples"), "give at least 3 examples");
            p.check(
                t.threshold.is_finite() && (-1.0..=1.0).contains(&t.threshold),
                format!("topic[{i}].threshold"),
                "must be in [-1, 1]",
            );
        }
    }
}
