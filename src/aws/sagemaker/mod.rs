//! Amazon SageMaker: the IP Insights training job of each model generation.

pub mod training_job;
