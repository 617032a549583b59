//! Threshold calibration for IP Insights scores, without AWS: the `calibrate` command scores
//! the sample drawn here on an endpoint and hands the scores back to this module.
//!
//! [`sample::draw`] picks normal pairs (validation pairs of entities seen in training) and as
//! many random-IP pairs of the same entities, split into a calibration and a check half;
//! [`threshold::calibrate`] chooses the threshold on the first half's anomaly scores
//! (`-dot_product`) and measures it on the second; [`Histogram`] and [`plot::write_svg`] show
//! both distributions with the threshold, in a terminal and as an SVG file.
//!
//! The metrics are the IP Insights engine's ([`crate::ipinsights::evaluate`]), so this module
//! is built with `control-plane`, which also carries the plot's `plotters`; the `ipcheck`
//! Lambda's build has neither.

pub mod histogram;
pub mod plot;
pub mod sample;
pub mod threshold;

pub use histogram::Histogram;
pub use plot::{PlotError, write_svg};
pub use sample::{Half, Sample, SampleError, draw};
pub use threshold::{Calibration, Counts, Policy, Scores, ThresholdError, calibrate, rate_above, threshold_for_fpr};
