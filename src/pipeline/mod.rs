//! The ML domain, free of AWS calls: the OCSF feature SQL per source version, and the IP
//! Insights hyperparameters and image registry.

pub mod features;
pub mod ipinsights;
