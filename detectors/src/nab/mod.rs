//! The Numenta Anomaly Benchmark: its corpus (58 labelled series, `corpus.rs`) and its
//! scoring (`score.rs`), so detectors can be judged the way the published scoreboard is.

pub mod corpus;
pub mod score;

pub use corpus::{Corpus, LabeledSeries};
pub use score::{PROFILES, Profile, ProfileScore, score};

/// Why the corpus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NabError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A file's content is not what NAB ships.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}
